"""A MAD-X language adapter (seq_bn_inv) saved by AdapterHub `adapters` with `save_adapter`, on a tiny
random BERT saved as a Hugging Face directory, and the last hidden state AdapterHub computes with it.

Writes adapterhub_bert/ (config.json, model.safetensors, vocab.txt: the base model),
adapterhub_seq_bn_inv/ (adapter_config.json, pytorch_adapter.bin: what save_adapter writes) and
adapterhub_expected.json (input ids, attention mask, last hidden state with the adapter active).
Run with the peer environment (../shared/bench/peers/README.md):
    ~/.cache/graft-peers/venv/bin/python Tests/GraftAdaptersTests/Fixtures/make_adapterhub_fixture.py
"""
import json, os
import adapters
import torch
from transformers import BertConfig, BertModel

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=40, hidden_act="gelu")
model = BertModel(config, add_pooling_layer=False).eval()
model.save_pretrained(os.path.join(here, "adapterhub_bert"), safe_serialization=True)
with open(os.path.join(here, "adapterhub_bert", "vocab.txt"), "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(25)]) + "\n")

adapters.init(model)
model.add_adapter("lang", config="seq_bn_inv")
model.set_active_adapters("lang")
with torch.no_grad():  # every adapter weight random, so that each one matters
    for name, p in model.named_parameters():
        if "adapters" in name:
            p.copy_(torch.randn_like(p) * 0.1)
model.save_adapter(os.path.join(here, "adapterhub_seq_bn_inv"), "lang")
ids = [[2, 7, 4, 11, 3], [2, 9, 3, 0, 0]]
mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
with torch.no_grad():
    out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
json.dump({"ids": ids, "attention_mask": mask, "last_hidden_state": out.tolist()},
          open(os.path.join(here, "adapterhub_expected.json"), "w"))
