#!/usr/bin/env bash
# More task epochs (Docs/stacking.md, "More task epochs at 9,600 verses"): run.sh's unseen-books recipe (9,600
# verses, seq_bn, adapt train's defaults) for EPOCHS epochs instead of 1, dev scored every 200 steps and the best
# step kept, for the task adapter alone and Stack(aligned language, task) on run.sh's aligned Chichewa adapter.
# Every 1-epoch run of run.sh kept its last step: this asks whether more of the same data lifts either, and whether
# the stack's better start lasts.
#   bash Benchmarks/chichewa/epochs.sh     # ~30 min per run and epoch count on 2 cores; rerun to continue
# Variables: OUT (default ~/.cache/graft/epochs), EXPERIMENT (run.sh's output: e5.h5 and the aligned adapter,
# taken from Benchmarks/chichewa/results if run.sh has not left it there), EPOCHS (3), SEEDS, THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
study_settings epochs
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
aligned="$EXPERIMENT/mlm-ny-seq_bn_inv-aligned.h5"
[ -f "$aligned" ] || cp Benchmarks/chichewa/results/mlm-ny-seq_bn_inv-aligned.h5 "$aligned"
$adapt data prepare chichewa-genres-books > /dev/null
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
export TASK_EPOCHS="${EPOCHS:-3}"
for seed in $SEEDS; do
    task_run "alone-epochs$TASK_EPOCHS-seed$seed" chichewa-genres-books --method seq_bn --seed "$seed" --evaluate-every 200
    task_run "stacked-aligned-epochs$TASK_EPOCHS-seed$seed" chichewa-genres-books --method seq_bn --seed "$seed" \
        --evaluate-every 200 --stack-on "$aligned"
done

for setup in alone stacked-aligned; do
    scores=()
    for seed in $SEEDS; do scores+=("$(test_macro_f1 "$OUT/$setup-epochs$TASK_EPOCHS-seed$seed.txt")"); done
    printf '%-16s %s epochs: test macro-F1 %s -> ' "$setup" "$TASK_EPOCHS" "${scores[*]}"
    printf '%s\n' "${scores[@]}" | mean_and_std
    grep -h 'best evaluation' "$OUT/$setup-epochs$TASK_EPOCHS-seed"*.txt
done
first="${SEEDS%% *}"
python3 Benchmarks/plot_losses.py --dev Docs/figures/chichewa-epochs-dev.svg \
    "Chichewa genres (unseen books), seq_bn, $TASK_EPOCHS epochs, seed $first" \
    "task alone=$OUT/alone-epochs$TASK_EPOCHS-seed$first.jsonl" \
    "Stack(aligned language, task)=$OUT/stacked-aligned-epochs$TASK_EPOCHS-seed$first.jsonl"
