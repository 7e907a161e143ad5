#!/usr/bin/env bash
# MAD-X 2.0's remedy, dropping the language adapters of the last layers (Docs/stacking.md, "Dropping the
# language adapter's last layers"), on run.sh's adapters: drop_layers.py zeroes a trained adapter's
# up-projections in the given layers, which then add nothing and run as the frozen backbone.
# In-language: Stack(dropped Chichewa adapter, seq_bn task) on run.sh's unseen-books recipe (9,600 verses,
# 1 epoch); each run prints the linear probe on its starting features first, the probe on what the language
# adapter hands the task adapter. Transfer (where MAD-X 2.0 was proposed): run.sh's transfer recipe with the
# last layer dropped on both sides, the English task adapter trained on Stack(dropped English, task) and
# evaluated on the Chichewa test books with the dropped Chichewa adapter swapped in.
#   bash Benchmarks/chichewa/madx2.sh    # ~9 min per training run on 2 cores; rerun to continue
# Variables: OUT (default ~/.cache/graft/madx2), EXPERIMENT (run.sh's output, its adapters taken from
# Benchmarks/chichewa/results if missing), SEEDS (0), THREADS, PEER_PYTHON (a Python with h5py).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
SEEDS="${SEEDS:-0}"
study_settings madx2
python="${PEER_PYTHON:-$HOME/.cache/graft-peers/venv/bin/python}"
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
for set in chichewa-genres-books english-genres-books; do $adapt data prepare "$set" > /dev/null; done
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
dropped() { # NAME LANGUAGE_ADAPTER LAYERS: $OUT/NAME.h5, run.sh's adapter with the adapters of LAYERS dropped
    local name="$1" language="$2" layers="$3"
    [ -f "$EXPERIMENT/$language.h5" ] || cp "Benchmarks/chichewa/results/$language.h5" "$EXPERIMENT/$language.h5"
    [ -f "$OUT/$name.h5" ] || "$python" Benchmarks/chichewa/drop_layers.py "$EXPERIMENT/$language.h5" "$OUT/$name.h5" "$layers"
}
dropped aligned-drop11 mlm-ny-seq_bn_inv-aligned 11
dropped plain-drop10-11 mlm-ny-seq_bn_inv 10,11
dropped plain-drop11 mlm-ny-seq_bn_inv 11
dropped english-drop11 mlm-en-seq_bn_inv 11
in_language=(aligned-drop11 plain-drop10-11)
for seed in $SEEDS; do
    for name in "${in_language[@]}"; do
        task_run "stacked-$name-seed$seed" chichewa-genres-books --method seq_bn --seed "$seed" --stack-on "$OUT/$name.h5"
    done
    task_run "transfer-en-stacked-drop11-seed$seed" english-genres-books --method seq_bn --seed "$seed" \
        --stack-on "$OUT/english-drop11.h5"
    resumable_run "transfer-ny-drop11-seed$seed" $adapt eval "${common[@]}" --examples 1200 --data chichewa-genres-books \
        --adapter "$OUT/transfer-en-stacked-drop11-seed$seed.h5" --stack-on "$OUT/plain-drop11.h5"
done
for seed in $SEEDS; do
    for name in "${in_language[@]}"; do
        echo "Stack($name, seq_bn) seed $seed: $(grep -h 'linear probe' "$OUT/stacked-$name-seed$seed.txt" | grep -o 'dev macro-F1 [0-9.]*'), test macro-F1 $(test_macro_f1 "$OUT/stacked-$name-seed$seed.txt")"
    done
    echo "transfer, last layer dropped on both sides, seed $seed: English test macro-F1 $(test_macro_f1 "$OUT/transfer-en-stacked-drop11-seed$seed.txt"), Chichewa $(test_macro_f1 "$OUT/transfer-ny-drop11-seed$seed.txt")"
done
