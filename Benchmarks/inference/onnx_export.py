"""Exports a Graft backbone file to ONNX through transformers' model (torch_backbone.py), the way a
user gets an ONNX model of it: torch.onnx.export (TorchScript exporter, opset 17), batch and
length dynamic. Next to the model it writes a reference: fixed ids and PyTorch's last hidden state
for them (OUT.reference.npz), so that onnx_inference.py can show that the export computes the same.

Usage: python onnx_export.py BACKBONE.h5 OUT.onnx
"""
import sys
import warnings

import numpy as np
import torch

from torch_backbone import load, random_ids

path, output = sys.argv[1], sys.argv[2]
model, config = load(path)
ids, mask = random_ids(config, 2, 16)
dynamic = {"batch": 0, "length": 1}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
    torch.onnx.export(model, (ids, mask), output, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={name: {axis: label for label, axis in dynamic.items()}
                                    for name in ("input_ids", "attention_mask", "last_hidden_state")})
reference_ids, reference_mask = random_ids(config, 3, 24, seed=1)
reference_mask[1, 12:] = 0
with torch.inference_mode():
    hidden = model(input_ids=reference_ids, attention_mask=reference_mask).last_hidden_state
np.savez(output + ".reference.npz", input_ids=reference_ids.numpy(), attention_mask=reference_mask.numpy(),
         last_hidden_state=hidden.numpy())
