"""Checks that Python peft loads a LoRA directory exported by Graft and computes what Graft computed.

Run:  python check_peft_export.py DIR [DIR ...]
Needs torch, transformers (4.57), peft (0.21.2), safetensors.

Each DIR is an export made on the fixture backbone `peft_base/` (see
`GRAFT_PEFT_EXPORT_DIR` in PeftTests.swift), holding besides peft's two files
`graft_expected.safetensors`: input_ids, attention_mask and Graft's
last_hidden_state. The script loads `peft_base/` with transformers, the export
with `PeftModel.from_pretrained`, and checks that peft reports no missing or
unexpected keys, that exactly the exported modules were adapted with exactly
the exported weights, and that the outputs agree on real tokens.
"""
import os
import sys
import warnings

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import BertModel

here = os.path.dirname(os.path.abspath(__file__))
failed = False
for directory in sys.argv[1:]:
    base = BertModel.from_pretrained(os.path.join(here, "peft_base"), add_pooling_layer=False).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, directory).eval()
    key_warnings = [str(w.message) for w in caught if "key" in str(w.message).lower()]

    exported = load_file(os.path.join(directory, "adapter_model.safetensors"))
    loaded = {name.replace(".default", ""): p.detach() for name, p in model.named_parameters() if "lora_" in name}
    same_names = sorted(loaded) == sorted(exported)
    same_values = same_names and all(torch.equal(loaded[name], exported[name]) for name in exported)

    reference = load_file(os.path.join(directory, "graft_expected.safetensors"))
    ids, mask = reference["input_ids"].long(), reference["attention_mask"].long()
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with model.disable_adapter():
            plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    difference = (output - reference["last_hidden_state"])[real].abs().max().item()
    effect = (output - plain)[real].abs().max().item()
    ok = not key_warnings and same_values and difference < 1e-5 and effect > 1e-3
    failed |= not ok
    print(f"{directory}: {len(exported)} tensors, {len(loaded)} LoRA parameters in peft, same names and values: {same_values}, "
          f"key warnings: {key_warnings or 'none'}, max |peft - graft| = {difference:.2e} "
          f"(adapter effect {effect:.2e}): {'OK' if ok else 'FAILED'}")
sys.exit(1 if failed else 0)
