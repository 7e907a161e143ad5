#!/usr/bin/env bash
# Why Stack(language, task) collapsed (Docs/stacking.md): the earlier task recipe, then one change at a time.
#   bash Benchmarks/chichewa/diagnose_stacking.sh [LANGUAGE_ADAPTER.h5]
# The language adapter defaults to run.sh's Chichewa seq_bn_inv (~/.cache/graft/experiment). Every run:
# chichewa-genres (8 genres, chapter split), seed 0, 2,000 training / 200 dev / 500 test verses, 48 tokens,
# batch 16, 100 steps with 15 warm-up steps: the settings under which the collapse was reported.
# Outputs: $OUT/diagnose-*.txt (default ~/.cache/graft/experiment); rerunning skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
language="${1:-$OUT/mlm-ny-seq_bn_inv.h5}"
adapt=.build/release/adapt
source Benchmarks/common.sh  # test_macro_f1
[ -f "$language" ] || { echo "no language adapter at $language: run Benchmarks/chichewa/run.sh first" >&2; exit 1; }
common=(--backbone "$OUT/e5.h5" --data chichewa-genres --method seq_bn --seed 0 --train-examples 2000 --dev-examples 200
        --test-examples 500 --max-length 48 --batch-size 16 --steps 100 --warmup-steps 15 --threads "${THREADS:-$(nproc)}")
earlier=(--head-start random --class-weights none --learning-rate 5e-3)
run() { # NAME [flags...]
    local name="diagnose-$1"; shift
    [ -f "$OUT/$name.txt" ] && return
    echo "== $name"
    $adapt train "${common[@]}" --output "$OUT/$name.h5" "$@" > "$OUT/$name.partial"
    mv "$OUT/$name.partial" "$OUT/$name.txt"
}
run earlier-alone "${earlier[@]}"
run earlier-stacked "${earlier[@]}" --stack-on "$language"
run stacked-balanced --head-start random --class-weights balanced --learning-rate 5e-3 --stack-on "$language"
run stacked-probe-start --head-start probe --class-weights none --learning-rate 5e-3 --stack-on "$language"
run stacked-lr-1e-3 --head-start random --class-weights none --learning-rate 1e-3 --stack-on "$language"
run stacked-current --stack-on "$language"
run current-alone
printf '%-20s %-12s %-12s %-9s %-15s %s\n' run "probe dev" "final dev" "final loss" "kept" "test macro-F1 (classes recalled)"
for name in earlier-alone earlier-stacked stacked-balanced stacked-probe-start stacked-lr-1e-3 stacked-current current-alone; do
    file="$OUT/diagnose-$name.txt"
    # the probe start's dev score, the dev score and loss after the last step, the evaluation whose
    # parameters were kept, and the test report's macro-F1 with the number of the 8 classes ever recalled
    printf '%-20s %-12s %-12s %-9s %-15s %s (%s)\n' "$name" \
        "$(grep -o 'starting features: dev macro-F1 [0-9.]*' "$file" | awk '{print $NF}' || true)" \
        "$(grep -o 'eval [0-9.]*' "$file" | tail -1 | awk '{print $2}')" \
        "$(grep 'step 100/100' "$file" | grep -o 'loss [0-9.]*' | awk '{print $2}')" \
        "$(grep -q 'before training' "$file" && echo 'the start' || echo 'step 100')" \
        "$(test_macro_f1 "$file")" \
        "$(awk '/^test split:/{t=1} t && NF==5 && $3+0 > 0 {n++} END {print n+0}' "$file")"
done
