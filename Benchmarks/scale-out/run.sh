#!/usr/bin/env bash
# Data-parallel training measured and projected (Docs/scale-out.md, "Measured and projected"):
# the main job's language-adapter step (multilingual-e5-small, chichewa-bible, seq_bn, batch 16 x 64 tokens,
# 4 micro-batches per update) at 1 process x 1 and 2 threads, 2 ranks x 1 thread and 4 ranks x 1 thread
# (oversubscribed on 2 cores, marked), with the time each rank spends exchanging gradients; then the
# exchange per update of every adapter method at 8, 32 and 128 nodes under a stated network model.
#   bash Benchmarks/scale-out/run.sh      # ~10 minutes on 2 idle cores
# Variables: SCRATCH (build folder), STEPS (updates per run, default 12), BACKBONE, OUT (scratch folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH="${SCRATCH:-.build}"
STEPS="${STEPS:-12}"
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
BACKBONE="${BACKBONE:-$cache/quickstart/e5.h5}"
OUT="${OUT:-$(mktemp -d)}"
bash Scripts/install-dependencies.sh
swift build --scratch-path "$SCRATCH" -c release --product adapt
adapt="$SCRATCH/release/adapt"
source Benchmarks/common.sh
import_default_backbone "$adapt" "$BACKBONE"
"$adapt" data prepare chichewa-bible > /dev/null
[ -f "$OUT/e5-config.json" ] || "$adapt" export "$BACKBONE" --format transformers --output "$OUT/e5-hf" > /dev/null
cp "$OUT/e5-hf/config.json" "$OUT/e5-config.json"
common=(mlm --backbone "$BACKBONE" --data chichewa-bible --method seq_bn --batch-size 16 --max-length 64
        --gradient-accumulation 4 --steps "$STEPS" --evaluation-texts 8 --learning-rate 1e-3)
run() { # NAME RANKS THREADS
    local name="$1" ranks="$2" threads="$3"
    local launch=()
    [ "$ranks" -gt 1 ] && launch=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" -x OPENBLAS_NUM_THREADS="$threads")
    OPENBLAS_NUM_THREADS="$threads" "${launch[@]}" "$adapt" "${common[@]}" --threads "$threads" --output "$OUT/$name.h5" \
        --log "$OUT/$name.jsonl" > /dev/null
}
run one-1 1 1
run one-2 1 2
run ranks-2 2 1
run ranks-4 4 1

python3 - "$OUT" "$STEPS" "$adapt" <<'EOF' > "$OUT/report.md"
import json, statistics, subprocess, sys
out, steps, adapt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def measure(name):
    rows = [json.loads(line) for line in open(f"{out}/{name}.jsonl")][2:]  # the first two updates warm up
    tokens = statistics.mean(r["throughput"] for r in rows)
    exchange = statistics.mean(r.get("exchangeSeconds") or 0 for r in rows)
    return tokens, exchange
print("| setting | tokens/s (update) | exchange per update (rank 0) |")
print("|---|---:|---:|")
results = {}
for name, label in [("one-1", "1 process x 1 thread"), ("one-2", "1 process x 2 threads"), ("ranks-2", "2 ranks x 1 thread"),
                    ("ranks-4", "4 ranks x 1 thread (oversubscribed: 2 cores)")]:
    tokens, exchange = measure(name)
    results[name] = tokens
    print(f"| {label} | {tokens:,.0f} | {exchange * 1000:.1f} ms |")
print()
print(f"2 ranks x 1 thread against 1 process x 2 threads: {results['ranks-2'] / results['one-2']:.2f}x the tokens/s.")
print()
# The projection (Docs/scale-out.md): one micro-batch of 16 verses (~42 tokens each) per node and update, its
# compute time as measured on one core here; the all-gather of every micro-batch's gradients (float32) as a ring.
config = f"{out}/e5-config.json"
methods = [("seq_bn", []), ("seq_bn_inv", []), ("par_bn", []), ("double_seq_bn", []), ("lora", []), ("mos", [])]
compute_per_micro = 16 * 42 / results["one-1"]  # seconds for one micro-batch of 16 verses of ~42 tokens on one core
bandwidth, latency = 10e9 / 8, 50e-6          # 10 Gb/s Ethernet, 50 microseconds per message
print("| method | trainable parameters | exchange per update at 8 / 32 / 128 nodes | share of the update at 8 / 32 / 128 nodes |")
print("|---|---:|---:|---:|")
for method, flags in methods:
    line = subprocess.run([adapt, "params", "--config", config, "--method", method] + flags, capture_output=True, text=True, check=True).stdout
    trainable = int(line.split("trainable=")[1].split()[0])
    times, shares = [], []
    for nodes in (8, 32, 128):
        data = nodes * trainable * 4  # every node's micro-batch gradients
        exchange = (nodes - 1) / nodes * data / bandwidth + (nodes - 1) * latency  # ring all-gather
        times.append(f"{exchange * 1000:.1f} ms")
        shares.append(f"{100 * exchange / (exchange + compute_per_micro):.1f}%")
    print(f"| {method} | {trainable:,} | {' / '.join(times)} | {' / '.join(shares)} |")
EOF
cat "$OUT/report.md"
