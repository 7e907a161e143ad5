#!/usr/bin/env bash
# UniPT against LoRA and seq_bn on Chichewa genre classification with multilingual-e5-small:
# the same training subsample, steps, batch and learning rate for the three; macro-F1 on the
# test split and peak resident memory (/usr/bin/time -v, "Maximum resident set size").
# Writes Docs/unipt.md. Environment overrides: BACKBONE, SCRATCH (swift build scratch path),
# OUT (logs and checkpoints), STEPS, TRAIN, TEST, LR, THREADS; REPORT_ONLY=1 rewrites the page
# from the logs already in OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."

BACKBONE=${BACKBONE:-$HOME/.cache/graft/quickstart/e5.h5}
SCRATCH=${SCRATCH:-.build}
OUT=${OUT:-/tmp/graft-unipt}
STEPS=${STEPS:-200}
TRAIN=${TRAIN:-2000}
TEST=${TEST:-1000}
LR=${LR:-1e-3}
THREADS=${THREADS:-1}
METHODS=(unipt lora seq_bn)

[ -f "$BACKBONE" ] || { echo "no backbone at $BACKBONE (run Scripts/quickstart.sh or adapt import)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
if [ -z "${REPORT_ONLY:-}" ]; then
    swift build --scratch-path "$SCRATCH" -c release --product adapt
    ADAPT="$SCRATCH/release/adapt"
    mkdir -p "$OUT"
    "$ADAPT" data prepare chichewa-genres
    # Loading the backbone and embedding one short text: the floor under every method.
    echo "query: moni" | /usr/bin/time -v "$ADAPT" embed --backbone "$BACKBONE" > /dev/null 2> "$OUT/embed.time"
    for method in "${METHODS[@]}"; do
        echo "== $method"
        rm -f "$OUT/$method.jsonl"  # --log appends
        /usr/bin/time -v "$ADAPT" train --backbone "$BACKBONE" --data chichewa-genres --method "$method" \
            --train-examples "$TRAIN" --dev-examples 256 --test-examples "$TEST" --steps "$STEPS" --batch-size 32 \
            --max-length 128 --learning-rate "$LR" --warmup-steps 20 --seed 0 --threads "$THREADS" \
            --log "$OUT/$method.jsonl" --output "$OUT/$method.h5" > "$OUT/$method.log" 2> "$OUT/$method.time"
        tail -n 2 "$OUT/$method.log"
    done
    echo "== probe"  # the baseline: logistic regression on the frozen backbone's embeddings, the same sample
    "$ADAPT" train --backbone "$BACKBONE" --data chichewa-genres --head-only --train-examples "$TRAIN" --dev-examples 256 \
        --test-examples "$TEST" --max-length 128 --seed 0 --threads "$THREADS" > "$OUT/probe.log"
    tail -n 1 "$OUT/probe.log"
fi

rss() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$1"; }
field() { sed -n "s/.*$2 \([0-9.]*\).*/\1/p" "$1" | tail -n 1; }
trainable() { sed -n 's/.*: \([0-9]*\) trainable parameters.*/\1/p' "$1" | head -n 1; }
floor=$(rss "$OUT/embed.time")
weights=$(( $(stat -c %s "$BACKBONE") / 1048576 ))
rows=""
declare -A held
for method in "${METHODS[@]}"; do
    peak=$(rss "$OUT/$method.time")
    held[$method]=$((peak - weights))
    rows+="| $method | $(trainable "$OUT/$method.log") | $(field "$OUT/$method.log" "macro-F1") | $(field "$OUT/$method.log" "accuracy") | $peak | $((peak - weights)) | $(wall "$OUT/$method.time") |"$'\n'
done

cat > Docs/unipt.md <<EOF
# UniPT: memory and accuracy against LoRA and seq_bn

Produced by \`bash Benchmarks/unipt/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc)-core machine, $THREADS OpenBLAS thread(s), release build).

**Setup.** Chichewa genre classification (\`chichewa-genres\`, 8 classes, split by chapter) on
multilingual-e5-small (\`$(basename "$BACKBONE")\`, 12 layers, hidden 384, its 4-bit weights de-quantised to float32). Each
method trains on the same seeded sample of $TRAIN training verses for $STEPS AdamW steps of batch 32
(length-bucketed, texts cut to 128 tokens), learning rate $LR for the three (\`adapt train\`'s own default for
LoRA is 3e-3, [results](results.md)) with 20 warm-up steps and linear decay,
weight decay 0.01, gradient clipping at 1, seed 0, and the head and recipe \`adapt train\` gives every
method (mean pooling, dropout 0.1, a linear-probe start, classes weighted equally, the best of the dev
evaluations on 256 verses kept). Macro-F1 is scored on $TEST test verses; the baseline, a logistic-regression probe
on the frozen backbone's embeddings of the same sample (\`adapt train --head-only\`), scores $(field "$OUT/probe.log" "macro-F1"). Peak memory is the process's maximum resident set size
(\`/usr/bin/time -v\`), which includes the backbone's weights.

- \`unipt\`: the side network of \`Sources/GraftAdapters/UniPT.swift\` (reduction factor 2, width 192)
  on all 13 hidden states; the backbone runs without a tape.
- \`lora\`: rank 8, alpha 8 on query and value of every layer (peft's defaults).
- \`seq_bn\`: Pfeiffer bottleneck after every feed-forward block, reduction factor 16.

| method | trainable parameters | test macro-F1 | test accuracy | peak RSS (MiB) | peak minus the weights (MiB) | wall time |
|---|---:|---:|---:|---:|---:|---|
$rows
The backbone's weights take $weights MiB (the size of its file). Loading them and embedding one text
(\`adapt embed\`) peaks at $floor MiB: the encoder allocates its tensors before reading them, so while
the largest (the 250,037 x 384 word embeddings, 366 MiB) is read it exists twice. That transient peak is
the floor of every row. "Peak minus the weights" bounds what
training itself held at its peak (activations kept for backward, gradients, AdamW moments, batches).

**Reading.** At its peak UniPT's training held ${held[unipt]} MiB besides the weights, LoRA's
${held[lora]} MiB ($(awk -v a="${held[lora]}" -v b="${held[unipt]}" 'BEGIN { printf "%.1f", a / b }') times as much) and
seq_bn's ${held[seq_bn]} MiB ($(awk -v a="${held[seq_bn]}" -v b="${held[unipt]}" 'BEGIN { printf "%.1f", a / b }') times): LoRA and seq_bn keep every layer's activations
for back-propagation through the frozen backbone, UniPT keeps the 13 hidden states and its own small
activations. Compare the macro-F1 column for accuracy: one seed, one short run each, on $TEST test
verses. Wall times are one run each on $THREADS thread(s), one method after another: UniPT's steps skip the
backbone's backward pass but still run its forward pass on every batch.
EOF
echo "wrote Docs/unipt.md"
