#!/usr/bin/env bash
# Property-based API testing of `adapt serve` against its OpenAPI document
# (Sources/GraftServe/Resources/openapi.json, served at /openapi.json) with schemathesis: every
# operation gets generated valid and invalid requests, and every answer is checked against the
# document (status codes, content types, headers, body schemas), for server errors, and for
# invalid requests accepted or valid ones refused. The server: multilingual-e5-small with
# Benchmarks/chichewa/run.sh's Chichewa language adapter and two genre adapters, loading at run
# time allowed from a directory holding a copy of one of them (one-step stand-ins where run.sh's adapters are
# missing: Benchmarks/common.sh, serve_adapters). Not part of CI (it needs pip's schemathesis).
#   bash Benchmarks/serve/schemathesis.sh    # a few minutes; EXAMPLES=100 (per operation) SEED=0
# SCHEMATHESIS: the schemathesis command (default ~/.cache/graft-peers/schemathesis/bin/schemathesis,
# made by: python3 -m venv ~/.cache/graft-peers/schemathesis && ~/.cache/graft-peers/schemathesis/bin/pip install schemathesis).
# Writes $OUT/schemathesis.txt (the report) and exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
OUT="${OUT:-$cache/experiment}"
EXAMPLES="${EXAMPLES:-100}"; SEED="${SEED:-0}"; PORT="${PORT:-18432}"
SCHEMATHESIS="${SCHEMATHESIS:-$HOME/.cache/graft-peers/schemathesis/bin/schemathesis}"
"$SCHEMATHESIS" --version > /dev/null || { echo "no schemathesis at $SCHEMATHESIS (see the header of $0)" >&2; exit 1; }
if [ -z "${ADAPT:-}" ]; then swift build -c release --product adapt > /dev/null; ADAPT=.build/release/adapt; fi
import_default_backbone "$ADAPT" "$OUT/e5.h5"
serve_adapters "$OUT" "$ADAPT"
adapters=(--adapter "lang=$lang" --adapter "genres=${alone_prefix}0.h5" --adapter "stacked=${stacked_prefix}0.h5")
# The directory that POST /v1/adapters may read: the document's example, genres.h5, is in it.
work="$(mktemp -d)"
cp "${alone_prefix}0.h5" "$work/genres.h5"
"$ADAPT" serve --backbone "$OUT/e5.h5" "${adapters[@]}" --adapter-directory "$work" --port "$PORT" --threads 2 \
    --log-level warning 2> "$OUT/schemathesis-server.log" &
server=$!
trap 'kill "$server" 2> /dev/null || true; rm -rf "$work"' EXIT
wait_for_server "$server" "$PORT" "$OUT/schemathesis-server.log"
status=0
"$SCHEMATHESIS" run "http://127.0.0.1:$PORT/openapi.json" --checks all --max-examples "$EXAMPLES" --seed "$SEED" \
    --workers 1 --no-color > "$OUT/schemathesis.txt" 2>&1 || status=$?
kill -0 "$server" 2> /dev/null || { echo "the server died during the run" >> "$OUT/schemathesis.txt"; status=1; }
tail -40 "$OUT/schemathesis.txt"
exit "$status"
