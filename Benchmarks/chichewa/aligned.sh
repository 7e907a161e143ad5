#!/usr/bin/env bash
# The translation-aligned language adapter (Docs/stacking.md, "A Chichewa adapter aligned to English"): run.sh's
# Chichewa language adapter (seq_bn_inv, 2 epochs, batch 16, lr 1e-3) trained with --anchor-weight and
# --anchor-translations english-bible, so that its pooled output of a Chichewa verse moves onto the frozen
# backbone's embedding of the English verse. Then zero-shot transfer: run.sh's English task adapter alone
# (seq_bn, unseen books, seeds 0-2) evaluated on the Chichewa test books without and with the aligned adapter
# under it. (Its effect where Chichewa labels are scarce is a setup of scarce.sh.)
#   bash Benchmarks/chichewa/aligned.sh     # ~1.5 hours on 2 cores; rerun to continue
# Variables: OUT (default ~/.cache/graft/anchor), EXPERIMENT (run.sh's output, for e5.h5), ANCHOR_WEIGHT (10), SEEDS, THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
study_settings anchor
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
for set in chichewa-bible english-bible chichewa-genres-books english-genres-books; do $adapt data prepare "$set" > /dev/null; done
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
aligned="$OUT/mlm-ny-aligned$ANCHOR_WEIGHT.h5"
language_adapter_run "mlm-ny-aligned$ANCHOR_WEIGHT" chichewa-bible --method seq_bn_inv --anchor-weight "$ANCHOR_WEIGHT" \
    --anchor-translations english-bible --output "$aligned"
evaluate() { # NAME ADAPTER [flags...]: the English task ADAPTER on the Chichewa test books
    local name="$1" adapter="$2"; shift 2
    resumable_run "$name" "$adapt" eval "${common[@]}" --examples "${TEST_EXAMPLES:-1200}" --adapter "$adapter" \
        --data chichewa-genres-books "$@"
}
for seed in $SEEDS; do
    task_run "transfer-en-alone-seed$seed" english-genres-books --method seq_bn --seed "$seed"
    evaluate "transfer-ny-no-lang-seed$seed" "$OUT/transfer-en-alone-seed$seed.h5"
    evaluate "transfer-ny-with-ny-aligned$ANCHOR_WEIGHT-seed$seed" "$OUT/transfer-en-alone-seed$seed.h5" --stack-on "$aligned"
done

grep -h 'distance' "$OUT/mlm-ny-aligned$ANCHOR_WEIGHT.txt"
for setup in no-lang "with-ny-aligned$ANCHOR_WEIGHT"; do
    scores=()
    for seed in $SEEDS; do scores+=("$(test_macro_f1 "$OUT/transfer-ny-$setup-seed$seed.txt")"); done
    printf 'English task adapter on Chichewa, %-18s: %s -> ' "$setup" "${scores[*]}"
    printf '%s\n' "${scores[@]}" | mean_and_std
done
