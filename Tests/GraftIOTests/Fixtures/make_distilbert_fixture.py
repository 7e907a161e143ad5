"""A tiny DistilBertForMaskedLM saved as a Hugging Face directory (distilbert/: config.json,
model.safetensors, vocab.txt) with the last hidden state and MLM logits transformers computes
(distilbert/expected.json), for the DistilBERT import.
Run with the peer environment (../shared/bench/peers/README.md):
    ~/.cache/graft-peers/venv/bin/python Tests/GraftIOTests/Fixtures/make_distilbert_fixture.py
"""
import json, os
import torch
from transformers import DistilBertConfig, DistilBertForMaskedLM

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=30, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                               max_position_embeddings=40, activation="gelu", pad_token_id=0))
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.3)
model.eval()
out = os.path.join(here, "distilbert")
model.save_pretrained(out, safe_serialization=True)
with open(os.path.join(out, "vocab.txt"), "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(25)]) + "\n")
ids = [[2, 7, 4, 11, 3], [2, 9, 3, 0, 0]]
mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
with torch.no_grad():
    result = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True)
json.dump({"ids": ids, "attention_mask": mask, "last_hidden_state": result.hidden_states[-1].tolist(),
           "logits": result.logits.tolist()}, open(os.path.join(out, "expected.json"), "w"))
