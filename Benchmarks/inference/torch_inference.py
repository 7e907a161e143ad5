"""PyTorch peer for inference throughput: transformers' XLMRobertaModel (or BertModel)
with the weights of a Graft backbone file, forward only, random ids, full mask.

Usage: python torch_inference.py BACKBONE.h5 BATCH LENGTH THREADS
Prints one JSON line: {"peer": "torch", "tokens_per_s": ..., "ms_per_batch": ...}.
"""
import json
import statistics
import sys
import time

import h5py
import torch
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

path, batch, length, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
with h5py.File(path, "r") as f:
    config = json.loads(f.attrs["config"])
    state = {name: torch.from_numpy(f[name][()].astype("float32")) for name in f.keys()}
kind = (XLMRobertaConfig, XLMRobertaModel) if config["model_type"] == "xlm-roberta" else (BertConfig, BertModel)
model = kind[1](kind[0](**config), add_pooling_layer="pooler.dense.weight" in state).eval()
missing, unexpected = model.load_state_dict(state, strict=False)
assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
generator = torch.Generator().manual_seed(0)
ids = torch.randint(3, config["vocab_size"] - 40, (batch, length), generator=generator)
mask = torch.ones_like(ids)
with torch.inference_mode():
    model(input_ids=ids, attention_mask=mask)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        samples.append(time.perf_counter() - start)
seconds = statistics.median(samples)
print(json.dumps({"peer": f"torch {torch.__version__}", "tokens_per_s": batch * length / seconds, "ms_per_batch": seconds * 1e3}))
