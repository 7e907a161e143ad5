#!/usr/bin/env bash
# Data-parallel training measured and projected (Docs/scale-out.md, "Measured and projected"):
# the main job's language-adapter step (multilingual-e5-small, chichewa-bible, seq_bn, batch 16 x 64 tokens,
# 4 micro-batches per update) at 1 process x 1 and 2 threads, 2 ranks x 1 thread and 4 ranks x 1 thread
# (oversubscribed on 2 cores, marked), with the time each rank spends exchanging gradients; then the
# exchange per update of every adapter method at 8, 32 and 128 nodes under a stated network model, and its
# plot (Docs/figures/scale-out-exchange.svg).
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

python3 - "$OUT" "$STEPS" "$adapt" Docs/figures/scale-out-exchange.svg <<'EOF' > "$OUT/report.md"
import json, statistics, subprocess, sys
out, steps, adapt, figure = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def measure(name):
    rows = [json.loads(line) for line in open(f"{out}/{name}.jsonl")][2:]  # the first two updates warm up
    tokens = statistics.mean(r["throughput"] for r in rows)
    exchange = statistics.mean(r.get("exchangeSeconds") or 0 for r in rows)
    return tokens, exchange, statistics.mean(r["seconds"] for r in rows)
print("| setting | tokens/s | update | of which compute | of which exchange (rank 0) |")
print("|---|---:|---:|---:|---:|")
results = {}
for name, label in [("one-1", "1 process x 1 thread"), ("one-2", "1 process x 2 threads"), ("ranks-2", "2 ranks x 1 thread"),
                    ("ranks-4", "4 ranks x 1 thread (oversubscribed: 2 cores)")]:
    tokens, exchange, seconds = measure(name)
    results[name] = tokens
    print(f"| {label} | {tokens:,.0f} | {seconds:.2f} s | {seconds - exchange:.2f} s | {exchange * 1000:.1f} ms |")
print()
print(f"2 ranks x 1 thread against 1 process x 2 threads: {results['ranks-2'] / results['one-2']:.2f}x the tokens/s.")
print()
# The projection (Docs/scale-out.md): one micro-batch of 16 verses (~42 tokens each) per node and update, its
# compute time as measured on one core here; the all-gather of every micro-batch's gradients (float32) as a ring.
config = f"{out}/e5-config.json"
methods = [("seq_bn", []), ("seq_bn_inv", []), ("par_bn", []), ("double_seq_bn", []), ("lora", []), ("mos", [])]
compute_per_micro = 16 * 42 / results["one-1"]  # seconds for one micro-batch of 16 verses of ~42 tokens on one core
bandwidth, latency = 10e9 / 8, 50e-6          # 10 Gb/s Ethernet, 50 microseconds per message
def exchange_seconds(nodes, trainable):
    data = nodes * trainable * 4  # every node's micro-batch gradients
    return (nodes - 1) / nodes * data / bandwidth + (nodes - 1) * latency  # ring all-gather
curves = []
print("| method | trainable parameters | exchange per update at 8 / 32 / 128 nodes | share of the update at 8 / 32 / 128 nodes |")
print("|---|---:|---:|---:|")
for method, flags in methods:
    line = subprocess.run([adapt, "params", "--config", config, "--method", method] + flags, capture_output=True, text=True, check=True).stdout
    trainable = int(line.split("trainable=")[1].split()[0])
    times, shares = [], []
    for nodes in (8, 32, 128):
        exchange = exchange_seconds(nodes, trainable)
        times.append(f"{exchange * 1000:.1f} ms")
        shares.append(f"{100 * exchange / (exchange + compute_per_micro):.1f}%")
    print(f"| {method} | {trainable:,} | {' / '.join(times)} | {' / '.join(shares)} |")
    curves.append((method, [(nodes, 100 * exchange_seconds(nodes, trainable) / (exchange_seconds(nodes, trainable) + compute_per_micro))
                             for nodes in (2, 4, 8, 16, 32, 64, 128, 256)]))

# The projection as a plot: share of the update spent exchanging against nodes (log scale), one line per method.
import math
colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
width, height, left, right, top, bottom = 640, 380, 60, 150, 30, 45
def px(nodes): return left + (width - left - right) * (math.log2(nodes) - 1) / 7
def py(share): return top + (height - top - bottom) * (1 - share / 60)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
       f'<text x="{left}" y="18" font-size="14">Projected exchange share of an update (multilingual-e5-small, 10 Gb/s)</text>']
for share in range(0, 61, 10):
    svg.append(f'<line x1="{left}" x2="{width - right}" y1="{py(share):.1f}" y2="{py(share):.1f}" stroke="#ddd"/>'
               f'<text x="{left - 8}" y="{py(share) + 4:.1f}" text-anchor="end">{share}%</text>')
for nodes in (2, 4, 8, 16, 32, 64, 128, 256):
    svg.append(f'<text x="{px(nodes):.1f}" y="{height - bottom + 16}" text-anchor="middle">{nodes}</text>')
svg.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">nodes</text>')
for index, (method, points) in enumerate(curves):
    color = colors[index % len(colors)]
    path = " ".join(f"{px(n):.1f},{py(min(v, 60)):.1f}" for n, v in points)
    svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
    svg.append(f'<text x="{width - right + 10}" y="{top + 16 * index + 12}" fill="{color}">{method}</text>')
svg.append("</svg>")
open(figure, "w").write("\n".join(svg) + "\n")
EOF
cat "$OUT/report.md"
