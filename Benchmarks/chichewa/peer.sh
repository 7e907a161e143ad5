#!/usr/bin/env bash
# Part (d) of run.sh: the genre recipe in PyTorch + AdapterHub `adapters` (peer_adapterhub.py) on the
# backbone and token ids Graft uses, for the probe and each task method alone, per split and seed; then each task
# method without an invertible block on Stack(language, task) over each of Graft's own language adapters in
# PEER_STACKS ("NAME=ADAPTER.h5 ...", NAME as run.sh names the stack, e.g. stacked-aligned), exported to AdapterHub's
# format, so that both libraries stack on the same frozen language adapter.
#   bash Benchmarks/chichewa/peer.sh OUT     # OUT holds run.sh's e5.h5; the same variables as run.sh
# PEER_DATA picks the splits (default: both).
# Writes RESULTS/peer-DATA-METHOD[-NAME].jsonl (RESULTS defaults to OUT; one JSON line per seed; seeds already there
# are skipped), which summarize.py sets beside Graft's runs of the same names.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:?usage: peer.sh OUT}"
adapt="${ADAPT:-.build/release/adapt}"
peer_python="${PEER_PYTHON:-$HOME/.cache/graft-peers/venv/bin/python}"
THREADS="${THREADS:-$(nproc)}"
SEEDS="${SEEDS:-0 1 2}"
TASK_METHODS="${TASK_METHODS:-seq_bn seq_bn_inv lora}"
TASK_EPOCHS="${TASK_EPOCHS:-1}"
TRAIN_EXAMPLES="${TRAIN_EXAMPLES:-9600}"; DEV_EXAMPLES="${DEV_EXAMPLES:-600}"; TEST_EXAMPLES="${TEST_EXAMPLES:-1200}"
MAX_LENGTH="${MAX_LENGTH:-64}"
[ -f "$OUT/e5-hf/model.safetensors" ] || $adapt export "$OUT/e5.h5" --format transformers --output "$OUT/e5-hf"
peer_run() { # DATA SEED METHOD SETUP [flags...]: one seed of one setup ("" for alone), unless RESULTS has it
    local data="$1" seed="$2" method="$3" setup="$4"; shift 4
    local results="${RESULTS:-$OUT}/peer-$data-$method${setup:+-$setup}.jsonl"
    if [ -f "$results" ] && grep -q "\"seed\": $seed," "$results"; then return; fi
    echo "== peer $data $method ${setup:-alone} seed $seed"
    nice -n 10 "$peer_python" Benchmarks/chichewa/peer_adapterhub.py --model "$OUT/e5-hf" \
        --data "$OUT/peer-tokens-$data-seed$seed.jsonl" --data-name "$data" --method "$method" --seeds "$seed" \
        --epochs "$TASK_EPOCHS" --threads "$THREADS" --setup "${setup:-alone}" --out "$results" "$@" > /dev/null
}
for stack in ${PEER_STACKS:-}; do  # each language adapter in AdapterHub's format, in OUT (again if the .h5 is newer)
    exported="$OUT/peer-language-${stack%%=*}"
    [ "$exported/adapter_config.json" -nt "${stack#*=}" ] || $adapt export "${stack#*=}" --format adapterhub --output "$exported"
done
for data in ${PEER_DATA:-chichewa-genres-books chichewa-genres}; do
    for seed in $SEEDS; do
        # adapt train --seed S samples its training examples with S: tokenize the same sample
        tokens="$OUT/peer-tokens-$data-seed$seed.jsonl"
        [ -f "$tokens" ] || $adapt data tokenize "$data" --backbone "$OUT/e5.h5" --max-length "$MAX_LENGTH" --seed "$seed" \
            --train-examples "$TRAIN_EXAMPLES" --dev-examples "$DEV_EXAMPLES" --test-examples "$TEST_EXAMPLES" --output "$tokens"
        for method in probe $TASK_METHODS; do peer_run "$data" "$seed" "$method" ""; done
        for stack in ${PEER_STACKS:-}; do
            name="${stack%%=*}"
            for method in $TASK_METHODS; do
                [[ $method == *_inv ]] && continue  # as run.sh: under Stack only the language adapter's block acts
                peer_run "$data" "$seed" "$method" "$name" --stack-on-adapter "$OUT/peer-language-$name"
            done
        done
    done
done
