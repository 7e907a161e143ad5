#!/usr/bin/env bash
# The anchored language adapter (Docs/stacking.md, "A language adapter that keeps the sentence embeddings"):
# run.sh's Chichewa language adapter (seq_bn_inv, 2 epochs, batch 16, lr 1e-3) trained with --anchor-weight,
# then Stack(anchored language, task) on unseen books with run.sh's task recipe, seeds 0-2. Compare with
# run.sh's chichewa-genres-books-seq_bn-{alone,stacked}-seedS. Then cross-lingual transfer (run.sh's part c)
# with anchored language adapters on both sides: an anchored English adapter, the English task adapter on
# Stack(English, task), evaluated on Chichewa with the anchored Chichewa adapter swapped in. Compare with
# run.sh's transfer-ny-{with-ny-lang,no-lang}-seedS.
#   bash Benchmarks/chichewa/anchor.sh     # ~2 hours on 2 cores; rerun to continue
# Variables: OUT (default ~/.cache/graft/anchor), EXPERIMENT (run.sh's output, for e5.h5), ANCHOR_WEIGHT (10), SEEDS, THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
study_settings anchor
[ -f "$EXPERIMENT/e5.h5" ] || { echo "no $EXPERIMENT/e5.h5: run Benchmarks/chichewa/run.sh first (it imports the backbone)" >&2; exit 1; }
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
run() { resumable_run "$@"; }  # NAME COMMAND...: see Benchmarks/common.sh
anchored() { # NAME DATA: an anchored seq_bn_inv language adapter at $OUT/NAME.h5, with run.sh's recipe
    language_adapter_run "$1" "$2" --method seq_bn_inv --anchor-weight "$ANCHOR_WEIGHT" --output "$OUT/$1.h5"
}
stacked() { # NAME DATA SEED LANGUAGE: run.sh's seq_bn task recipe on Stack(LANGUAGE, task), at $OUT/NAME.h5
    task_run "$1" "$2" --method seq_bn --seed "$3" --stack-on "$4"
}
language="$OUT/mlm-ny-anchor$ANCHOR_WEIGHT.h5"
anchored "mlm-ny-anchor$ANCHOR_WEIGHT" chichewa-bible
for seed in $SEEDS; do
    stacked "chichewa-genres-books-seq_bn-stacked-anchor$ANCHOR_WEIGHT-seed$seed" chichewa-genres-books "$seed" "$language"
done
english="$OUT/mlm-en-anchor$ANCHOR_WEIGHT.h5"
anchored "mlm-en-anchor$ANCHOR_WEIGHT" english-bible
for seed in $SEEDS; do
    name="transfer-en-stacked-anchor$ANCHOR_WEIGHT-seed$seed"
    stacked "$name" english-genres-books "$seed" "$english"
    run "transfer-ny-with-ny-anchor$ANCHOR_WEIGHT-seed$seed" $adapt eval "${common[@]}" --examples 1200 --adapter "$OUT/$name.h5" \
        --stack-on "$language" --data chichewa-genres-books
done
for seed in $SEEDS; do
    printf 'seed %s: ' "$seed"
    for name in "$EXPERIMENT/chichewa-genres-books-seq_bn-alone-seed$seed" "$EXPERIMENT/chichewa-genres-books-seq_bn-stacked-seed$seed" \
                "$OUT/chichewa-genres-books-seq_bn-stacked-anchor$ANCHOR_WEIGHT-seed$seed"; do
        [ -f "$name.txt" ] || continue
        printf '%s probe dev %s test %s; ' "$(basename "$name" | sed 's/chichewa-genres-books-seq_bn-//; s/-seed[0-9]*//')" \
            "$(grep -o 'starting features: dev macro-F1 [0-9.]*' "$name.txt" | awk '{print $NF}')" \
            "$(test_macro_f1 "$name.txt")"
    done
    echo
done
for seed in $SEEDS; do
    printf 'transfer, seed %s (Chichewa test macro-F1): ' "$seed"
    for name in "$EXPERIMENT/transfer-ny-no-lang-seed$seed" "$EXPERIMENT/transfer-ny-with-ny-lang-seed$seed" \
                "$OUT/transfer-ny-with-ny-anchor$ANCHOR_WEIGHT-seed$seed"; do
        [ -f "$name.txt" ] && printf '%s %s; ' "$(basename "$name" | sed 's/transfer-ny-//; s/-seed[0-9]*//')" \
            "$(test_macro_f1 "$name.txt")"
    done
    echo
done
