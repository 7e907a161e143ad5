#!/usr/bin/env bash
# Few labelled verses (Docs/stacking.md, "When labelled verses are scarce"): does the Chichewa language adapter
# help the genre task when labels are scarce, where the reference study's gains come from? On unseen books
# (chichewa-genres-books), for each training size in SIZES and each seed: the linear probe, the seq_bn task adapter
# alone and Stack(language, task), with run.sh's recipe for STEPS optimizer steps of 16 (epochs = STEPS x 16 / size,
# rounded up). run.sh's backbone and Chichewa language adapter in $EXPERIMENT are used, and trained there first
# (run.sh's first runs, which it then skips) if absent. Compare with run.sh's 9,600-verse rows (Docs/results.md).
#   bash Benchmarks/chichewa/scarce.sh      # about 2.5 h on 2 cores with the defaults; rerun to continue
# Variables: OUT (~/.cache/graft/scarce), EXPERIMENT (~/.cache/graft/experiment), SIZES ("600 2400"), STEPS (300),
# SEEDS ("0 1 2"), THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product adapt
adapt=.build/release/adapt
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
EXPERIMENT="${EXPERIMENT:-$cache/experiment}"
OUT="${OUT:-$cache/scarce}"
SIZES="${SIZES:-600 2400}"; STEPS="${STEPS:-300}"; SEEDS="${SEEDS:-0 1 2}"; THREADS="${THREADS:-$(nproc)}"
mkdir -p "$OUT" "$EXPERIMENT"
source Benchmarks/common.sh
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
for set in chichewa-bible chichewa-genres-books; do $adapt data prepare "$set" > /dev/null; done
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
language="$EXPERIMENT/mlm-ny-seq_bn_inv.h5"
OUT="$EXPERIMENT" language_adapter_run mlm-ny-seq_bn_inv chichewa-bible --method seq_bn_inv --output "$language"

data=chichewa-genres-books
for size in $SIZES; do
    epochs=$(( (STEPS * 16 + size - 1) / size ))
    for seed in $SEEDS; do
        TRAIN_EXAMPLES=$size probe_run "n$size-probe-seed$seed" $data --seed "$seed"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-alone-seed$seed" $data --method seq_bn --seed "$seed"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-stacked-seed$seed" $data --method seq_bn --seed "$seed" \
            --stack-on "$language"
    done
done

# test macro-F1 by size and setup: each seed, then mean ± sample standard deviation
for size in $SIZES; do
    for setup in probe alone stacked; do
        scores=()
        for seed in $SEEDS; do
            scores+=("$(grep -o 'macro-F1 [0-9.]* ([0-9]* examples)' "$OUT/n$size-$setup-seed$seed.txt" | tail -1 | awk '{print $2}')")
        done
        printf '%s verses, %-7s: %s -> ' "$size" "$setup" "${scores[*]}"
        printf '%s\n' "${scores[@]}" | awk '{s += $1; q += $1 * $1; n++}
            END {m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; printf "%.4f ± %.4f\n", m, sqrt(v > 0 ? v : 0)}'
    done
done
