#!/usr/bin/env bash
# The quick-start (Scripts/quickstart.sh: the README's first command) with seeds 0, 1 and 2: the spread
# of what a user sees. Each seed runs the whole quick-start (the seed sets the language adapter's
# initialisation and masking, the genre sample, the task adapter's initialisation and data order) into
# $OUT/seedS, skipping a seed whose last step finished; then prints each row's figures, mean ± std,
# and the stacked model's paired gain over the task adapter alone.
#   bash Benchmarks/chichewa/quickstart_seeds.sh    # about 15 minutes per seed on 2 cores
# Variables: SEEDS (default "0 1 2"), OUT (default ~/.cache/graft/quickstart-seeds).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/quickstart-seeds}"
SEEDS="${SEEDS:-0 1 2}"
swift build -c release --product adapt
import_default_backbone .build/release/adapt "$OUT/e5.h5"
for seed in $SEEDS; do
    work="$OUT/seed$seed"
    if [ -n "$(test_macro_f1 "$work/task-stacked.txt" 2> /dev/null)" ]; then echo "seed $seed: done ($work)"; continue; fi
    mkdir -p "$work"
    ln -sf ../e5.h5 "$work/e5.h5"  # one imported backbone for every seed
    SEED="$seed" GRAFT_WORK="$work" bash Scripts/quickstart.sh > "$work/quickstart.log"
done

row() { # LABEL FILE FIGURE
    local label="$1" file="$2" figure="$3" values=() seed
    for seed in $SEEDS; do values+=("$($figure "$OUT/seed$seed/$file")"); done
    printf '%-40s %s -> ' "$label" "${values[*]}"
    printf '%s\n' "${values[@]}" | mean_and_std
}
echo "The quick-start with seeds $SEEDS (each seed's figures, then mean ± std)"
row "pseudo-perplexity, head alone" mlm-before.txt pseudo_perplexity
row "pseudo-perplexity, with language adapter" mlm-after.txt pseudo_perplexity
row "macro-F1, linear probe" probe.txt test_macro_f1
row "macro-F1, task adapter alone" task-alone.txt test_macro_f1
row "macro-F1, Stack(language, task)" task-stacked.txt test_macro_f1
gains=()
for seed in $SEEDS; do
    gains+=("$(awk -v a="$(test_macro_f1 "$OUT/seed$seed/task-alone.txt")" -v s="$(test_macro_f1 "$OUT/seed$seed/task-stacked.txt")" \
        'BEGIN { printf "%+.4f", s - a }')")
done
printf '%-40s %s -> ' "paired gain, Stack over alone" "${gains[*]}"
printf '%s\n' "${gains[@]}" | mean_and_std
