#!/usr/bin/env bash
# Few labelled verses (Docs/stacking.md, "When labelled verses are scarce"): does the Chichewa language adapter
# help the genre task when labels are scarce, where the reference study's gains come from? On unseen books
# (chichewa-genres-books), for each training size in SIZES and each seed: the linear probe, the seq_bn task adapter
# alone, Stack(language, task), Stack(anchored language, task) and Stack(aligned language, task), with run.sh's recipe
# for STEPS optimizer steps of 16 (epochs = STEPS x 16 / size, rounded up). The language adapters are run.sh's (in
# $EXPERIMENT), anchor.sh's and aligned.sh's (in $ANCHOR, anchor weight 10), trained there first if absent (so those
# scripts then skip them). Compare with run.sh's and anchor.sh's 9,600-verse rows (Docs/results.md, Docs/stacking.md).
#   bash Benchmarks/chichewa/scarce.sh      # about 3.5 h on 2 cores with the defaults; rerun to continue
# Variables: OUT (~/.cache/graft/scarce), EXPERIMENT (~/.cache/graft/experiment), ANCHOR (~/.cache/graft/anchor), SIZES ("600 2400"), STEPS (300),
# SEEDS ("0 1 2"), THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
study_settings scarce
ANCHOR="${ANCHOR:-$cache/anchor}"
SIZES="${SIZES:-600 2400}"; STEPS="${STEPS:-300}"
mkdir -p "$ANCHOR"
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
for set in chichewa-bible english-bible chichewa-genres-books; do $adapt data prepare "$set" > /dev/null; done
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
language="$EXPERIMENT/mlm-ny-seq_bn_inv.h5"
OUT="$EXPERIMENT" language_adapter_run mlm-ny-seq_bn_inv chichewa-bible --method seq_bn_inv --output "$language"
anchored="$ANCHOR/mlm-ny-anchor10.h5"
OUT="$ANCHOR" language_adapter_run mlm-ny-anchor10 chichewa-bible --method seq_bn_inv --anchor-weight 10 --output "$anchored"
aligned="$ANCHOR/mlm-ny-aligned10.h5"
OUT="$ANCHOR" language_adapter_run mlm-ny-aligned10 chichewa-bible --method seq_bn_inv --anchor-weight 10 \
    --anchor-translations english-bible --output "$aligned"

data=chichewa-genres-books
for size in $SIZES; do
    epochs=$(( (STEPS * 16 + size - 1) / size ))
    for seed in $SEEDS; do
        TRAIN_EXAMPLES=$size probe_run "n$size-probe-seed$seed" $data --seed "$seed"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-alone-seed$seed" $data --method seq_bn --seed "$seed"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-stacked-seed$seed" $data --method seq_bn --seed "$seed" \
            --stack-on "$language"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-stacked-anchored-seed$seed" $data --method seq_bn \
            --seed "$seed" --stack-on "$anchored"
        TRAIN_EXAMPLES=$size TASK_EPOCHS=$epochs task_run "n$size-stacked-aligned-seed$seed" $data --method seq_bn \
            --seed "$seed" --stack-on "$aligned"
    done
done

# test macro-F1 by size and setup: each seed, then mean ± sample standard deviation
for size in $SIZES; do
    for setup in probe alone stacked stacked-anchored stacked-aligned; do
        scores=()
        for seed in $SEEDS; do
            scores+=("$(test_macro_f1 "$OUT/n$size-$setup-seed$seed.txt")")
        done
        printf '%s verses, %-16s: %s -> ' "$size" "$setup" "${scores[*]}"
        printf '%s\n' "${scores[@]}" | mean_and_std
    done
done
