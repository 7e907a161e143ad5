#!/usr/bin/env bash
# The recipe study behind run.sh's task defaults (Docs/stacking.md, "How much training data"): on unseen
# books (chichewa-genres-books), the seq_bn task adapter and the linear probe with 2,400 and with 9,600
# training verses, a lower learning rate, and Stack(language, task). Needs run.sh's backbone and
# Chichewa language adapter ($EXPERIMENT/e5.h5, $EXPERIMENT/mlm-ny-seq_bn_inv.h5) and a release build.
#   bash Benchmarks/chichewa/sweep.sh        # about 2 h on 2 cores; rerun to continue
# Each run writes $OUT/NAME.txt (with its wall time) only when it finishes; finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
adapt=.build/release/adapt
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
EXPERIMENT="${EXPERIMENT:-$cache/experiment}"
OUT="${OUT:-$cache/sweep}"
mkdir -p "$OUT"
THREADS="${THREADS:-$(nproc)}"
run() { # NAME SEED [flags...]
    local name="$1" seed="$2" start=$SECONDS; shift 2
    [ -f "$OUT/$name.txt" ] && return
    echo "== $name"
    $adapt train --backbone "$EXPERIMENT/e5.h5" --data chichewa-genres-books --max-length 64 --threads "$THREADS" \
        --seed "$seed" --dev-examples 600 --test-examples 1200 "$@" > "$OUT/$name.partial"
    echo "elapsed $((SECONDS - start)) s" >> "$OUT/$name.partial"
    mv "$OUT/$name.partial" "$OUT/$name.txt"
}
language=(--stack-on "$EXPERIMENT/mlm-ny-seq_bn_inv.h5")
run lr1e-4 0 --train-examples 2400 --epochs 2 --learning-rate 1e-4 --evaluate-every 50 --output "$OUT/lr1e-4.h5"
run lr3e-4-stacked 0 --train-examples 2400 --epochs 2 --learning-rate 3e-4 --evaluate-every 50 "${language[@]}" \
    --output "$OUT/lr3e-4-stacked.h5"
run n9600-stacked 0 --train-examples 9600 --epochs 1 --evaluate-every 100 "${language[@]}" --output "$OUT/n9600-stacked.h5"
for seed in 0 1 2; do
    suffix=$([ "$seed" = 0 ] && echo "" || echo "-seed$seed")
    run "n9600$suffix" "$seed" --train-examples 9600 --epochs 1 --evaluate-every 100 --output "$OUT/n9600$suffix.h5"
    run "probe-9600$suffix" "$seed" --train-examples 9600 --head-only
done
