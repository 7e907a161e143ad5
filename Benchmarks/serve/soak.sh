#!/usr/bin/env bash
# The soak test of `adapt serve`: SECONDS_OF_LOAD (600) of mixed traffic from CLIENTS (16) keep-alive
# clients (classification under 3 task adapters alone and 3 stacked on the Chichewa language adapter,
# embeddings through the language adapter, and requests to an adapter `extra` that another client
# loads and removes every 4 s), then every answer compared with `adapt predict` / `adapt embed` on the
# same texts (soak.py). Passes with no failed request other than the deliberate 404s of `extra` while
# it is removed, and every answer equal to the offline commands' (labels, and values within 1e-5).
# The texts: the first 256 test verses of chichewa-genres-books; the backbone: multilingual-e5-small.
#   bash Benchmarks/serve/soak.sh       # about 15 minutes; SECONDS_OF_LOAD=600 CLIENTS=16 THREADS=2
# Uses the adapters of Benchmarks/chichewa/run.sh in $OUT (default ~/.cache/graft/experiment), or one-step
# stand-ins where they are missing (Benchmarks/common.sh, serve_adapters).
# Writes $OUT/serve-soak.md (the report) and exits non-zero when the test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
SECONDS_OF_LOAD="${SECONDS_OF_LOAD:-600}"; CLIENTS="${CLIENTS:-16}"; THREADS="${THREADS:-2}"; PORT="${PORT:-18433}"
if [ -z "${ADAPT:-}" ]; then swift build -c release --product adapt > /dev/null; ADAPT=.build/release/adapt; fi
import_default_backbone "$ADAPT" "$OUT/e5.h5"
serve_adapters "$OUT" "$ADAPT"
alone() { echo "$alone_prefix$1.h5"; }
stacked() { echo "$stacked_prefix$1.h5"; }
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2> /dev/null; rm -rf "$work"' EXIT
cp "$(alone 1)" "$work/extra.h5"   # soak.py loads it as `extra`: its answers must be a1's
python3 - "$cache/data/chichewa-genres-books.jsonl" "$work" <<'PY'
import json, sys
texts = [row["text"] for row in map(json.loads, open(sys.argv[1])) if row["split"] == "test"][:256]
json.dump(texts, open(f"{sys.argv[2]}/texts.json", "w"))
open(f"{sys.argv[2]}/texts.txt", "w").write("".join(text + "\n" for text in texts))
PY
mkdir "$work/expected"
common=(--backbone "$OUT/e5.h5" --input "$work/texts.txt" --max-length 128 --threads "$THREADS")
for seed in 0 1 2; do
    "$ADAPT" predict "${common[@]}" --adapter "$(alone $seed)" > "$work/expected/a$seed.jsonl"
    "$ADAPT" predict "${common[@]}" --adapter "$(stacked $seed)" --stack-on "$lang" > "$work/expected/stacked-s$seed.jsonl"
done
"$ADAPT" embed "${common[@]}" --adapter "$lang" > "$work/expected/embed-lang.jsonl"
"$ADAPT" serve --backbone "$OUT/e5.h5" "${adapters[@]}" --adapter-directory "$work" --port "$PORT" --threads "$THREADS" \
    --max-length 128 --log-level warning 2> "$work/server.log" &
server=$!
wait_for_server "$server" "$PORT" "$work/server.log"
start=$(date +%s)
python3 Benchmarks/serve/soak.py traffic --url "http://127.0.0.1:$PORT" --texts "$work/texts.json" --seconds "$SECONDS_OF_LOAD" \
    --clients "$CLIENTS" --output "$work/responses.jsonl"
kill -0 "$server" || { echo "the server died under the load" >&2; cat "$work/server.log" >&2; exit 1; }
kill -TERM "$server"; wait "$server"; server=""
{
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
         "adapt serve --threads $THREADS; $CLIENTS clients for $((  $(date +%s) - start )) s"
    echo
} > "$OUT/serve-soak.md"
status=0
python3 Benchmarks/serve/soak.py compare --responses "$work/responses.jsonl" --texts "$work/texts.json" --expected "$work/expected" \
    --report "$work/report.md" > /dev/null || status=$?
cat "$work/report.md" >> "$OUT/serve-soak.md"
cat "$OUT/serve-soak.md"
exit "$status"
