#!/usr/bin/env bash
# Continual learning over the backbone (Docs/continual-adapters.md): on the bible-genres stream
# (Chichewa verses, 8 genres as 4 tasks of 2, no task identity at test time), a seq_bn adapter and
# head over frozen multilingual-e5-small under naive fine-tuning, replay, EWC and LwF, and an adapter
# per task with a nearest-prototype router, beside the same learners on frozen embeddings (linear
# probe, a probe per task with the router, the key-value bottleneck), all on one sample in one command
# per seed.
#   bash Benchmarks/continual/adapters.sh   # ~1 hour per seed on two threads (the adapter runs)
# Resumable: a seed whose results are in OUT is not run again. Writes Docs/continual-adapters.md from
# every seed in OUT. OUT is in the repository (Benchmarks/continual/results): each seed's report and the
# commit it ran at are committed, so that a later session, on a fresh machine, adds the seeds still missing.
# Variables: SEEDS (default "0 1 2"), OUT (default Benchmarks/continual/results), SCRATCH
# (build folder, default .build), THREADS (default 1), BACKBONE (default ~/.cache/graft/quickstart/e5.h5).
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH="${SCRATCH:-.build}"
THREADS="${THREADS:-1}"
SEEDS="${SEEDS:-0 1 2}"
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
BACKBONE="${BACKBONE:-$cache/quickstart/e5.h5}"
OUT="${OUT:-Benchmarks/continual/results}"
swift build --scratch-path "$SCRATCH" -c release --product adapt
adapt="$SCRATCH/release/adapt"
source Benchmarks/common.sh
import_default_backbone "$adapt" "$BACKBONE"
"$adapt" data prepare chichewa-genres
mkdir -p "$OUT"

flags=(--stream bible-genres --backbone "$BACKBONE" --method linear,linear-per-task,kv,adapter-per-task,adapter
       --strategy naive,replay,ewc,lwf --train-per-class 100 --test-per-class 50 --epochs 10 --threads "$THREADS")
for seed in $SEEDS; do
    if [ -s "$OUT/seed$seed.json" ]; then echo "seed $seed: done ($OUT/seed$seed.json)"; continue; fi
    echo "seed $seed: adapt continual ${flags[*]} --seed $seed"
    commit="$(source_commit)"
    "$adapt" continual "${flags[@]}" --seed "$seed" --json "$OUT/seed$seed.json.partial" > "$OUT/seed$seed.md"
    echo "$commit" > "$OUT/seed$seed.commit"
    mv "$OUT/seed$seed.json.partial" "$OUT/seed$seed.json"
done
# The page covers every seed finished in OUT, earlier invocations' included.
done_seeds="$(ls "$OUT" | sed -n 's/^seed\([0-9]*\)\.json$/\1/p' | sort -n)"
python3 Benchmarks/continual/summarize_adapters.py "$OUT" "adapt continual ${flags[*]//$HOME/\~} --seed N" $done_seeds > Docs/continual-adapters.md
echo "wrote Docs/continual-adapters.md"
