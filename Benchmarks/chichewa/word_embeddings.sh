#!/usr/bin/env bash
# What training the word-embedding table costs in full fine-tuning (Docs/cli.md, `--word-embeddings`): adapt train
# --method full with the table frozen (the default) and trained, one epoch of 2,400 unseen-book verses (batch 16,
# 64 tokens), one thread, no checkpoints; per run its wall time, peak memory (GNU time), median tokens/s (its log)
# and test macro-F1.
#   bash Benchmarks/chichewa/word_embeddings.sh     # about 10 min on 2 cores; rerun to print the table again
# Variables: OUT (default ~/.cache/graft/word-embeddings), EXPERIMENT (run.sh's output: e5.h5), SEEDS (0), THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
SEEDS="${SEEDS:-0}" THREADS="${THREADS:-1}"
study_settings word-embeddings
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
$adapt data prepare chichewa-genres-books > /dev/null
for seed in $SEEDS; do
    for table in freeze train; do
        name="$table-seed$seed"
        resumable_run "$name" /usr/bin/time -f "peak RSS %M KiB" -o "$OUT/$name.rss" "$adapt" train --backbone "$EXPERIMENT/e5.h5" \
            --data chichewa-genres-books --max-length 64 --threads "$THREADS" --method full --word-embeddings "$table" \
            --epochs 1 --train-examples 2400 --dev-examples 600 --test-examples 1200 --seed "$seed" \
            --log "$OUT/$name.jsonl" --output "$OUT/$name.h5"
    done
done
echo "| word embeddings | seed | wall time | peak RSS | median tok/s | test macro-F1 |"
echo "|---|---|---|---|---|---|"
for seed in $SEEDS; do
    for table in freeze train; do
        name="$table-seed$seed"
        rss=$(awk '/peak RSS/ {printf "%.2f GB", $3 * 1024 / 1e9}' "$OUT/$name.rss")
        tokens=$(python3 -c 'import json, statistics, sys
print(round(statistics.median(r["throughput"] for r in map(json.loads, filter(str.strip, open(sys.argv[1]))) if "throughput" in r)))' "$OUT/$name.jsonl")
        echo "| $table | $seed | $(grep -o 'elapsed [0-9]* s' "$OUT/$name.txt" | awk '{print $2}') s | $rss | $tokens | $(test_macro_f1 "$OUT/$name.txt") |"
    done
done
