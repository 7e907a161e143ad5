"""Checks that AdapterHub `adapters` loads an adapter Graft wrote (`adapt export --format adapterhub`) and
computes what it computed before the round trip: a fixture adapter saved by AdapterHub's save_adapter, read by
Graft and exported again, must give the fixture's expected last hidden state and, with a head, logits
(adapterhub_expected.json for the MAD-X language adapter adapterhub_seq_bn_inv, the default;
adapterhub_lora_expected.json for adapterhub_lora_bert and adapterhub_lora_xlmr, LoRA with heads;
adapterhub_head2_expected.json for adapterhub_head2_bert, adapterhub_head2_xlmr_gelu and adapterhub_head2_xlmr_relu,
LoRA with two-layer heads).
    F=Tests/GraftAdaptersTests/Fixtures
    adapt import $F/adapterhub_bert --output /tmp/bert.h5
    adapt export $F/adapterhub_seq_bn_inv --backbone /tmp/bert.h5 --format adapterhub --output /tmp/seq_bn_inv
    ~/.cache/graft-peers/venv/bin/python $F/check_adapterhub_export.py /tmp/seq_bn_inv
    adapt export $F/adapterhub_lora_bert --backbone /tmp/bert.h5 --format adapterhub --output /tmp/lora_bert
    ~/.cache/graft-peers/venv/bin/python $F/check_adapterhub_export.py /tmp/lora_bert adapterhub_lora_bert
    adapt import $F/adapterhub_xlmr --output /tmp/xlmr.h5
    adapt export $F/adapterhub_lora_xlmr --backbone /tmp/xlmr.h5 --format adapterhub --output /tmp/lora_xlmr
    ~/.cache/graft-peers/venv/bin/python $F/check_adapterhub_export.py /tmp/lora_xlmr adapterhub_lora_xlmr
    for h in adapterhub_head2_bert:bert adapterhub_head2_xlmr_gelu:xlmr adapterhub_head2_xlmr_relu:xlmr; do
        adapt export $F/${h%:*} --backbone /tmp/${h#*:}.h5 --format adapterhub --output /tmp/${h%:*}
        ~/.cache/graft-peers/venv/bin/python $F/check_adapterhub_export.py /tmp/${h%:*} ${h%:*}
    done
(2026-12-03: largest differences 0.00e+00.)
"""
import json, os, sys
import adapters
import torch
from adapters import AutoAdapterModel

here = os.path.dirname(os.path.abspath(__file__))
fixture = sys.argv[2] if len(sys.argv) > 2 else "adapterhub_seq_bn_inv"
if fixture == "adapterhub_seq_bn_inv":
    expected = dict(json.load(open(os.path.join(here, "adapterhub_expected.json"))), base="adapterhub_bert")
else:
    expected = json.load(open(os.path.join(here, "adapterhub_head2_expected.json" if fixture.startswith("adapterhub_head2")
                                            else "adapterhub_lora_expected.json")))[fixture]
model = AutoAdapterModel.from_pretrained(os.path.join(here, expected["base"])).eval()
name = model.load_adapter(sys.argv[1], use_safetensors=True)
model.set_active_adapters(name)
inputs = dict(input_ids=torch.tensor(expected["ids"]), attention_mask=torch.tensor(expected["attention_mask"]))
mask = torch.tensor(expected["attention_mask"]).bool()
outputs = {"last_hidden_state": lambda: model.base_model(**inputs).last_hidden_state}
if "logits" in expected:
    assert name in model.heads, f"the head {name} was not loaded"
    outputs["logits"] = lambda: model(**inputs, head=name).logits
for key, compute in outputs.items():
    with torch.no_grad():
        found, wanted = compute(), torch.tensor(expected[key])
    difference = ((found - wanted)[mask] if found.dim() == 3 else found - wanted).abs().max().item()
    print(f"adapter {name}: {key}, largest difference to AdapterHub's own output {difference:.2e}")
    assert difference < 1e-5, difference
