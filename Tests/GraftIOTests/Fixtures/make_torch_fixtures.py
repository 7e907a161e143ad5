"""A tiny BertModel saved both ways transformers saves models: torch_bert/ (pytorch_model.bin, torch's
zip + pickle format) and torch_bert_safetensors/ (model.safetensors), so a test can check that both
import to the same backbone; and torch_malicious.bin, torch's layout around a pickle that would run
`os.system` when unpickled by Python (Graft must refuse it without running anything).
Run with the peer environment (../shared/bench/peers/README.md):
    ~/.cache/graft-peers/venv/bin/python Tests/GraftIOTests/Fixtures/make_torch_fixtures.py
"""
import os, pickle, zipfile
import torch
from transformers import BertConfig, BertModel

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
model = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=40), add_pooling_layer=False)
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(25)]
for name, safe in [("torch_bert", False), ("torch_bert_safetensors", True)]:
    out = os.path.join(here, name)
    model.save_pretrained(out, safe_serialization=safe)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")

class Payload:
    def __reduce__(self):
        return (os.system, ("echo graft-must-not-run-this",))

with zipfile.ZipFile(os.path.join(here, "torch_malicious.bin"), "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", pickle.dumps({"embeddings.word_embeddings.weight": Payload()}, protocol=2))
    archive.writestr("archive/version", "3\n")
