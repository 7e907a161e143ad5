"""Checks that AdapterHub `adapters` loads an adapter Graft wrote (`adapt export --format adapterhub`) and
computes what it computed before the round trip: the fixture's MAD-X language adapter, read by Graft from
AdapterHub's save_adapter output and exported again, must give adapterhub_expected.json.
    F=Tests/GraftAdaptersTests/Fixtures
    adapt import $F/adapterhub_bert --output /tmp/b.h5
    adapt export $F/adapterhub_seq_bn_inv --backbone /tmp/b.h5 --format adapterhub --output /tmp/exported
    ~/.cache/graft-peers/venv/bin/python $F/check_adapterhub_export.py /tmp/exported
(2026-12-03: largest difference 0.00e+00.)
"""
import json, os, sys
import adapters
import torch
from transformers import BertModel

here = os.path.dirname(os.path.abspath(__file__))
model = BertModel.from_pretrained(os.path.join(here, "adapterhub_bert"), add_pooling_layer=False).eval()
adapters.init(model)
name = model.load_adapter(sys.argv[1], use_safetensors=True)
model.set_active_adapters(name)
expected = json.load(open(os.path.join(here, "adapterhub_expected.json")))
with torch.no_grad():
    out = model(input_ids=torch.tensor(expected["ids"]), attention_mask=torch.tensor(expected["attention_mask"])).last_hidden_state
mask = torch.tensor(expected["attention_mask"]).bool()
difference = (out - torch.tensor(expected["last_hidden_state"]))[mask].abs().max().item()
print(f"adapter {name}: largest difference to AdapterHub's own output {difference:.2e}")
assert difference < 1e-5, difference
