#!/usr/bin/env bash
# `adapt serve` under load with wrk: requests/s and p50 / p99 latency at 1, 8 and 64 connections, for
# single-adapter traffic (every request to one task adapter) and mixed traffic (requests cycle over 8
# setups of 9 adapters: 3 seq_bn task adapters and a LoRA one alone, the same 4 kinds stacked on the Chichewa
# language adapter), with
# dynamic mixed-adapter batching on (--max-batch-tokens 4096 --batch-wait-ms 2) and off
# (--max-batch-tokens 1 --batch-wait-ms 0: one request per forward pass). Each request classifies one
# verse of the test books of chichewa-genres-books; the backbone is multilingual-e5-small.
#   bash Benchmarks/serve/run.sh            # about 6 minutes; DURATION=20s THREADS=2 CONNECTIONS="1 8 64"
# Uses the adapters of Benchmarks/chichewa/run.sh in $OUT (default ~/.cache/graft/experiment), or one-step
# stand-ins of the same shapes where they are missing (Benchmarks/common.sh, serve_adapters).
# ADAPT names a built adapt binary to use instead of building the release one.
# Then the same verses offline (adapt predict) for the served / offline ratio.
# Writes $OUT/serve-bench.md (a Markdown table) and Docs/figures/serve-throughput.svg, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
command -v wrk > /dev/null || apt-get install -y wrk > /dev/null
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
THREADS="${THREADS:-2}"; DURATION="${DURATION:-20s}"; CONNECTIONS="${CONNECTIONS:-1 8 64}"; PORT="${PORT:-18431}"
if [ -z "${ADAPT:-}" ]; then swift build -c release --product adapt > /dev/null; ADAPT=.build/release/adapt; fi
import_default_backbone "$ADAPT" "$OUT/e5.h5"
serve_adapters "$OUT" "$ADAPT"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2> /dev/null; rm -rf "$work"' EXIT

# The wrk scripts: each request classifies the next test verse under the next setup of the traffic.
python3 - "$cache/data/chichewa-genres-books.jsonl" "$work" <<'PY'
import json, sys
texts = [row["text"] for row in map(json.loads, open(sys.argv[1])) if row["split"] == "test"][:256]
traffic = {"single": [{"adapter": "a0"}],
           "mixed": [{"adapter": "a0"}, {"adapters": ["lang", "s0"]}, {"adapter": "a1"}, {"adapters": ["lang", "s1"]},
                     {"adapter": "a2"}, {"adapters": ["lang", "s2"]}, {"adapter": "l"}, {"adapters": ["lang", "ls"]}]}
open(f"{sys.argv[2]}/texts.txt", "w").write("".join(text + "\n" for text in texts * 4))
open(f"{sys.argv[2]}/one.txt", "w").write(texts[0] + "\n")
for name, setups in traffic.items():
    bodies = [json.dumps({**setups[i % len(setups)], "texts": [text]}) for i, text in enumerate(texts)]
    with open(f"{sys.argv[2]}/{name}.lua", "w") as script:
        script.write("local bodies = {" + ",".join("[==[" + body + "]==]" for body in bodies) + "}\n")
        script.write("""local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    counter = counter + 1
    return wrk.format(nil, "/v1/classify", nil, bodies[(counter % #bodies) + 1])
end
""")
PY

# The server's counters a row reads before and after its traffic: tokens, texts and passes.
counters() { curl -s "localhost:$PORT/metrics" | awk '$1 == "graft_serve_tokens_total" { t = $2 }
    $1 == "graft_serve_batch_texts_sum" { s = $2 } $1 == "graft_serve_batch_texts_count" { n = $2 } END { print t "," s "," n }'; }
table="$OUT/serve-bench.md"
{
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; adapt serve --threads $THREADS; wrk $DURATION per row"
    echo
    echo "| batching | traffic | connections | requests/s | p50 ms | p99 ms | tokens/s | texts per pass | non-2xx |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
} > "$table"
for batching in on off; do
    if [ "$batching" = on ]; then limits=(--max-batch-tokens 4096 --batch-wait-ms 2); else limits=(--max-batch-tokens 1 --batch-wait-ms 0); fi
    "$ADAPT" serve --backbone "$OUT/e5.h5" "${adapters[@]}" --port "$PORT" --threads "$THREADS" --max-length 128 \
        --log-level warning "${limits[@]}" &
    server=$!
    wait_for_server "$server" "$PORT"
    for traffic in single mixed; do
        for connections in $CONNECTIONS; do
            before=$(counters)
            wrk -t "$((connections < 2 ? 1 : 2))" -c "$connections" -d "$DURATION" --timeout 60s --latency \
                -s "$work/$traffic.lua" "http://127.0.0.1:$PORT" > "$work/wrk.txt"
            after=$(counters)
            seconds=$(awk '/requests in/ { sub(/s,?$/, "", $4); print $4 }' "$work/wrk.txt")
            python3 - "$work/wrk.txt" "$batching" "$traffic" "$connections" "$before" "$after" "$seconds" >> "$table" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
batching, traffic, connections, before, after, seconds = sys.argv[2:8]
def milliseconds(percentile):
    value, unit = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
failed = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
tokens, texts, passes = (a - b for a, b in zip(map(float, after.split(",")), map(float, before.split(","))))
print(f"| {batching} | {traffic} | {connections} | {rate:.1f} | {milliseconds(50):.1f} | {milliseconds(99):.1f} | "
      f"{tokens / float(seconds):.0f} | {texts / passes:.1f} | {failed.group(1) if failed else 0} |")
PY
        done
    done
    kill -TERM "$server"; wait "$server"; server=""
done

# Offline, the same work without HTTP: adapt predict with a0 on the same verses (4 x 256, batches of 32),
# less a run on one verse (loading the backbone and adapter), in verses/s, against the served requests/s.
seconds() { local start=$EPOCHREALTIME; "$@" > /dev/null; python3 -c "print($EPOCHREALTIME - $start)"; }
offline=(predict --backbone "$OUT/e5.h5" --adapter "${alone_prefix}0.h5" --max-length 128
         --threads "$THREADS" --batch-size 32)
one=$(seconds "$ADAPT" "${offline[@]}" --input "$work/one.txt")
all=$(seconds "$ADAPT" "${offline[@]}" --input "$work/texts.txt")
python3 - "$table" "$one" "$all" >> "$table" <<'PY'
import re, sys
rows = [line.split("|")[1:-1] for line in open(sys.argv[1]) if re.match(r"\| (on|off) ", line)]
rate = {(r[0].strip(), r[1].strip(), r[2].strip()): float(r[3]) for r in rows}
offline = 1023 / (float(sys.argv[3]) - float(sys.argv[2]))
print(f"\noffline (adapt predict, a0, batches of 32, 1,024 verses): {offline:.1f} verses/s")
if ("on", "single", "64") in rate:
    print(f"served at 64 connections, batching on: single {rate[('on', 'single', '64')] / offline:.2f}x offline; "
          f"mixed {rate[('on', 'mixed', '64')] / rate[('on', 'single', '64')]:.2f}x single "
          f"(8 connections: {rate[('on', 'mixed', '8')] / rate[('on', 'single', '8')]:.2f}x)")
PY
python3 Benchmarks/serve/plot.py "$table" Docs/figures/serve-throughput.svg
cat "$table"
