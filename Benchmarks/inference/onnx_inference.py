"""ONNX Runtime peer for inference throughput, on the model onnx_export.py wrote.

Two setups, as users run it: the exported graph with ONNX Runtime's own graph optimisations
(ORT_ENABLE_ALL), and the same graph first rewritten by onnxruntime.transformers' BERT optimizer
(fused attention, skip-LayerNorm and bias-GELU kernels; cached next to the model). Both on the CPU
execution provider with THREADS intra-op threads and one inter-op thread. Each setup first checks
its output against PyTorch's reference (onnx_export.py) on ids with padding.

Usage: python onnx_inference.py MODEL.onnx BATCH LENGTH THREADS
Prints one JSON line per setup: {"engine": "onnxruntime" | "onnxruntime-fused", "tokens_per_s": ..., ...}.
"""
import json
import os
import sys

import numpy as np
import onnxruntime
from onnxruntime.transformers import optimizer

from timing import median_seconds

path, batch, length, threads = sys.argv[1], *map(int, sys.argv[2:5])


def fused(path):
    """The BERT optimizer's rewrite of the model at `path` (heads and width read from the graph;
    opt_level 0: its fusions only, the session applies ONNX Runtime's own when it loads it)."""
    target = path.removesuffix(".onnx") + "-fused.onnx"
    if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(path):
        model = optimizer.optimize_model(path, model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
        assert model.get_fused_operator_statistics()["Attention"] > 0, "the optimizer fused no attention"
        model.save_model_to_file(target + ".tmp")
        os.replace(target + ".tmp", target)
    return target


def session(path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


reference = np.load(path + ".reference.npz")
ids = np.random.default_rng(0).integers(3, 250_000, (batch, length)).astype(np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
for engine, model in (("onnxruntime", path), ("onnxruntime-fused", fused(path))):
    run = session(model).run
    expected = reference["last_hidden_state"]
    got = run(None, {"input_ids": reference["input_ids"], "attention_mask": reference["attention_mask"]})[0]
    real = reference["attention_mask"].astype(bool)  # padded positions are undefined in both
    difference = float(np.abs(got[real] - expected[real]).max())
    assert difference < 1e-3, f"{engine}: output differs from PyTorch's by {difference}"
    seconds = median_seconds(lambda: run(None, feeds))
    print(json.dumps({"engine": engine, "version": onnxruntime.__version__, "batch": batch, "length": length,
                      "threads": threads, "tokens_per_s": round(batch * length / seconds, 1),
                      "ms_per_batch": round(seconds * 1e3, 2), "max_difference_to_pytorch": difference}))
