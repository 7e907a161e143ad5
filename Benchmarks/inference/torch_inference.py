"""PyTorch peer for inference throughput: transformers' model with the weights of a Graft backbone
file (torch_backbone.py), forward only, random ids, full mask.

Usage: python torch_inference.py BACKBONE.h5 BATCH LENGTH THREADS
Prints one JSON line: {"engine": "pytorch", "version": ..., "tokens_per_s": ..., "ms_per_batch": ...}.
"""
import json
import sys

import torch

from timing import median_seconds
from torch_backbone import load, random_ids

path, batch, length, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model, config = load(path)
ids, mask = random_ids(config, batch, length)
with torch.inference_mode():
    seconds = median_seconds(lambda: model(input_ids=ids, attention_mask=mask))
print(json.dumps({"engine": "pytorch", "version": torch.__version__, "batch": batch, "length": length, "threads": threads,
                  "tokens_per_s": round(batch * length / seconds, 1), "ms_per_batch": round(seconds * 1e3, 2)}))
