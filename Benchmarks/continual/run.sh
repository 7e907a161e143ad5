#!/usr/bin/env bash
# Class-incremental continual learning on frozen features (Docs/continual.md), every strategy:
# the discrete key-value bottleneck against a linear probe, an MLP and joint
# training, on two streams:
#   bible-genres   8 genres of Chichewa verses as 4 tasks of 2, multilingual-e5-small embeddings
#   english-bible-genres  the same genres of English verses
#   language-genres  domain-incremental: the 8 genres in English, then in Chichewa
#   fashion-mnist  10 classes as 5 tasks of 2, pixels through a fixed random projection
# plus the bottleneck at the paper's reference sizes (256 heads x 4096 keys of 14) on both, and an
# ablation of the bottleneck on bible-genres over 3 seeds.
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
source Benchmarks/common.sh
import_default_backbone "$adapt" "$BACKBONE"
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
run bible-genres --stream bible-genres --backbone "$BACKBONE" --strategy all --plot Docs/figures/continual-bible-genres.svg
run english-bible-genres --stream english-bible-genres --backbone "$BACKBONE" --strategy all --plot Docs/figures/continual-english-bible-genres.svg
run language-genres --stream language-genres --backbone "$BACKBONE" --strategy all --plot Docs/figures/continual-language-genres.svg
run fashion-mnist --stream fashion-mnist --strategy all --plot Docs/figures/continual-fashion-mnist.svg
if [ "$REFERENCE" = 1 ]; then
    run fashion-mnist-reference --stream fashion-mnist --method kv --keys 4096
    # 1,000 unlabelled verses are too few for k-means with 4,096 keys: random keys, EMA-refined.
    run bible-genres-reference --stream bible-genres --backbone "$BACKBONE" --method kv --keys 4096 --key-init random
fi

# The ablation on bible-genres (the fix of the bottleneck on text, Docs/continual.md): one change at a
# time from the earlier setting, 3 seeds each; "NAME|FLAGS" per row.
ablation=(
    "kv as before (64 heads, AdamW 0.01, loss over all seen classes)|--method kv --heads 64 --kv-optimizer adamw --kv-learning-rate 0.01 --loss-classes seen"
    "+ plain SGD (only selected values move)|--method kv --heads 64 --loss-classes seen"
    "+ loss over the task's own classes|--method kv --heads 64"
    "+ 256 heads (the reference's; the default)|--method kv"
    "default, inference over all heads (untrained values kept)|--method kv --kv-average-all-heads"
    "default, AdamW 0.01 instead of SGD|--method kv --kv-optimizer adamw --kv-learning-rate 0.01"
    "linear probe (loss over all seen classes)|--method linear"
    "linear probe, loss over the task's own classes|--method linear --loss-classes task"
    "MLP (loss over all seen classes)|--method mlp"
    "MLP, loss over the task's own classes|--method mlp --loss-classes task"
    "a linear probe per task, nearest-prototype task router|--method linear-per-task"
    "joint training (upper bound)|--method joint"
)
ablation_table="$out/ablation.md"
{
    echo "| setting | average accuracy | forgetting |"
    echo "|---|---:|---:|"
    for row in "${ablation[@]}"; do
        name="${row%%|*}"; read -r -a flags <<< "${row#*|}"
        for seed in 0 1 2; do
            "$adapt" continual --stream bible-genres --backbone "$BACKBONE" --threads "$THREADS" --seed "$seed" "${flags[@]}" \
                | sed -n 's/^average accuracy \([0-9.]*\), forgetting \([-0-9.]*\),.*/\1 \2/p' | tail -1
        done | awk -v name="$name" '{a[NR]=$1; f[NR]=$2; sa+=$1; sf+=$2}
            END {ma=sa/NR; mf=sf/NR; for (i=1;i<=NR;i++) {va+=(a[i]-ma)^2; vf+=(f[i]-mf)^2}
                 printf "| %s | %.3f ± %.3f | %.3f ± %.3f |\n", name, ma, sqrt(va/(NR-1)), mf, sqrt(vf/(NR-1))}'
    done
} > "$ablation_table"
cat "$ablation_table"

{
    echo "# Continual learning: discrete key-value bottleneck"
    echo
    echo "Written by \`Benchmarks/continual/run.sh\` on $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $THREADS OpenBLAS thread(s);"
    echo "$(uname -sr); $(swift --version 2>&1 | head -1)."
    echo
    echo "Protocol (Träuble et al. 2023, \"Discrete Key-Value Bottleneck\"): class-incremental, each task trained"
    echo "for a fixed number of epochs on its own examples (and, for replay and GDumb, a memory of earlier ones),"
    echo "no task identity at test time: after each task, every task seen so far is scored among all classes seen"
    echo "so far. \`A[i][j]\` is the accuracy on"
    echo "task j after training task i; average accuracy is the mean of the last row; forgetting is the mean over"
    echo "every task but the last of its best accuracy before the last task minus its final accuracy."
    echo "\`joint\` retrains the MLP from scratch on all tasks so far, shuffled together: the i.i.d. upper bound."
    echo "language-genres is domain-incremental instead: its two tasks are the same 8 genres, in English and then"
    echo "in Chichewa, and every prediction ranges over all 8 from the first task on."
    echo "See \`adapt continual --help\` for every setting; the headers below give the ones used, and"
    echo "\`Datasets/README.md\` (\"Continual-learning streams\") the samples. The bible-genres features are"
    echo "computed once and cached: the first run embeds 4,133 verses (about 5 minutes on one thread here), so"
    echo "its \"data ready\" time below may be that of a cached rerun. Results are deterministic for a given"
    echo "seed, machine and thread count. Adapters over the backbone under the same strategies, and an adapter"
    echo "per task with a router: [continual-adapters](continual-adapters.md)."
    echo
    echo "## Why the bottleneck forgot on text, and the fix: an ablation"
    echo
    echo "Earlier runs of this page had the bottleneck wipe out the first task on bible-genres (0.725 -> 0.005"
    echo "after the second task; average accuracy 0.250 against the linear probe's 0.197). The cause is in two"
    echo "parts. (1) Genres of verses are not local in multilingual-e5's space: \`adapt continual\` prints the"
    echo "key sharing, the share of a task's test selections (example, head) whose key some other task's training"
    echo "examples also select, and it is 0.82-0.95 for every task and every size tried (64-256 heads, 128-4,096"
    echo "keys, key sizes 4-32). Locality alone cannot protect a task here. (2) Two things then write over the"
    echo "shared values. The loss over all classes seen so far lowers the earlier classes' outputs in every value"
    echo "a new task's examples select. AdamW's moments keep moving values after the batches that selected them."
    echo "The fix has two parts. Values are trained by plain SGD, as the reference does, so a value moves only"
    echo "when a batch selects it. Each task's cross-entropy runs over its own classes only (the \"labels trick\","
    echo "Zeno et al. 2018), so earlier classes' outputs get no gradient. Prediction still ranges over every class"
    echo "seen so far. The second part departs from the reference, which uses cross-entropy over all of the"
    echo "data's classes. On Fashion-MNIST (key sharing 0.77-0.97 there too) the same defaults also help, 0.773"
    echo "against 0.63-0.71 before (its run below). The rows for the linear probe and the MLP with the same loss"
    echo "show how much of the gain is the loss alone. Inference over the heads whose value was trained only"
    echo "(the reference masks untrained keys) changes nothing here: with this much sharing, every test selection"
    echo "reads a trained value."
    echo
    echo "bible-genres, seeds 0, 1, 2 (mean ± standard deviation); each row changes one thing from the one above"
    echo "(the first four rows) or from the default. The seed draws the projection, the keys' initialisation"
    echo "and the example order; the data sample is fixed. The probe per task keeps one linear probe per task and"
    echo "routes each test verse to the task whose mean training embedding is nearest by cosine (no task identity"
    echo "is given): nothing a later task learns overwrites an earlier task's probe, so it forgets only where it"
    echo "routes wrongly; another rehearsal-free method to hold the bottleneck against."
    echo
    cat "$ablation_table"
    for name in "${runs[@]}"; do
        echo
        echo "## Run: $name"
        echo
        echo '```'
        cat "$out/$name.command"
        echo '```'
        echo
        plot="$(sed -n 's/.*--plot \([^ ]*\).*/\1/p' "$out/$name.command")"
        if [ -n "$plot" ]; then echo "![$name: each run's average accuracy after each task](${plot#Docs/})"; echo; fi
        echo "Wall time $(cat "$out/$name.seconds") s. Output (progress lines removed):"
        echo
        grep -v '^    ' "$out/$name.md" | sed 's/^## /### /'
    done
} > Docs/continual.md
echo "wrote Docs/continual.md"
