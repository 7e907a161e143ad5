#!/usr/bin/env bash
# The quick-start's recipe evaluated where users' text comes from: Scripts/quickstart.sh's language adapter
# (seed 0: 150 masked-LM steps aligned to English) under its task recipe (seq_bn, 1 epoch of 2,000 verses,
# 400 dev, 800 test, 48 tokens), on the unseen-book split chichewa-genres-books (6 genres; dev and test books
# never in training) instead of the chapter split: the linear probe, the task adapter alone and
# Stack(language, task) for seeds 0-2, then mean ± std and the paired gain of the stack over the adapter alone.
#   bash Benchmarks/chichewa/quickstart_books.sh    # ~20 minutes on 2 cores after Scripts/quickstart.sh
# Variables: SEEDS (0 1 2), THREADS (every core), OUT (default ~/.cache/graft/quickstart-books); the language
# adapter and backbone are read from GRAFT_WORK (default ~/.cache/graft/quickstart).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
study_settings quickstart-books
work="${GRAFT_WORK:-$cache/quickstart}"
[ -f "$work/chichewa-language.h5" ] || { echo "no $work/chichewa-language.h5: run Scripts/quickstart.sh first" >&2; exit 1; }
$adapt data prepare chichewa-genres-books > /dev/null
for seed in $SEEDS; do
    genres=(--backbone "$work/e5.h5" --data chichewa-genres-books --max-length 48 --train-examples 2000 --dev-examples 400
            --test-examples 800 --threads "$THREADS" --seed "$seed")
    resumable_run "probe-seed$seed" $adapt train "${genres[@]}" --head-only
    resumable_run "alone-seed$seed" $adapt train "${genres[@]}" --method seq_bn --epochs 1 --output "$OUT/alone-seed$seed.h5"
    resumable_run "stacked-seed$seed" $adapt train "${genres[@]}" --method seq_bn --epochs 1 \
        --stack-on "$work/chichewa-language.h5" --output "$OUT/stacked-seed$seed.h5"
done
score() { test_macro_f1 "$OUT/$1-seed$2.txt"; }  # RUN SEED
echo "| seed | linear probe | task adapter alone | Stack(language, task) | paired gain | wall time (probe, alone, stacked) |"
echo "|---:|---:|---:|---:|---:|---|"
gains=()
for seed in $SEEDS; do
    gains+=("$(awk -v a="$(score alone "$seed")" -v s="$(score stacked "$seed")" 'BEGIN { printf "%+.4f", s - a }')")
    times=$(for run in probe alone stacked; do awk '/^elapsed/ { print $2 " s" }' "$OUT/$run-seed$seed.txt"; done | paste -sd, - | sed 's/,/, /g')
    echo "| $seed | $(score probe "$seed") | $(score alone "$seed") | $(score stacked "$seed") | ${gains[-1]} | $times |"
done
for run in probe alone stacked; do
    printf '%s: ' "$run"
    for seed in $SEEDS; do score "$run" "$seed"; done | mean_and_std
done
printf 'paired gain of the stack: '
printf '%s\n' "${gains[@]}" | mean_and_std
