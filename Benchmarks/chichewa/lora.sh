#!/usr/bin/env bash
# Why LoRA lagged the bottleneck adapters (Docs/stacking.md, "LoRA in one epoch"): run.sh's unseen-books recipe
# (9,600 verses, 1 epoch, adapt train's defaults otherwise) for the LoRA task adapter alone (r 8, alpha 8, query
# and value) at the bottleneck adapters' learning rate (1e-3, LoRA's default until this study), 3e-3 (its default
# since) and 1e-2, and with updates on every linear layer at 1e-3; as a control, the seq_bn task adapter at 3e-3
# (run.sh's seq_bn runs are at 1e-3).
#   bash Benchmarks/chichewa/lora.sh     # ~9 min per run on 2 cores; rerun to continue
# Variables: OUT (default ~/.cache/graft/lora), EXPERIMENT (run.sh's output: e5.h5), SEEDS (0), THREADS,
# VARIANTS (a subset of: lora-lr1e-3 lora-lr3e-3 lora-lr1e-2 lora-all-linear seq_bn-lr3e-3).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
SEEDS="${SEEDS:-0}"
study_settings lora
import_default_backbone "$adapt" "$EXPERIMENT/e5.h5"
$adapt data prepare chichewa-genres-books > /dev/null
common=(--backbone "$EXPERIMENT/e5.h5" --max-length 64 --threads "$THREADS")
flags() { # VARIANT: its adapt train flags
    case "$1" in
        lora-lr1e-3) echo --method lora --learning-rate 1e-3 ;;
        lora-lr3e-3) echo --method lora --learning-rate 3e-3 ;;
        lora-lr1e-2) echo --method lora --learning-rate 1e-2 ;;
        lora-all-linear) echo --method lora --learning-rate 1e-3 --targets query,key,value,attention_output,ffn_in,ffn_out ;;
        seq_bn-lr3e-3) echo --method seq_bn --learning-rate 3e-3 ;;
        *) echo "unknown variant $1" >&2; exit 1 ;;
    esac
}
VARIANTS="${VARIANTS:-lora-lr1e-3 lora-lr3e-3 lora-lr1e-2 lora-all-linear seq_bn-lr3e-3}"
for seed in $SEEDS; do
    for variant in $VARIANTS; do
        # shellcheck disable=SC2046 # flags are words
        task_run "$variant-seed$seed" chichewa-genres-books --seed "$seed" $(flags "$variant")
    done
done
for variant in $VARIANTS; do
    for seed in $SEEDS; do
        file="$OUT/$variant-seed$seed.txt"
        echo "$variant seed $seed: $(grep -h 'best evaluation' "$file" | head -1), test macro-F1 $(test_macro_f1 "$file")"
    done
done
