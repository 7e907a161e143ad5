#!/usr/bin/env bash
# Two ranks on two "hosts": network namespaces joined by a veth pair, Open MPI over TCP between them
# (Docs/scale-out.md). Trains a language adapter for a few updates with 2 ranks across the link and checks
# that it equals the single-process run (h5diff of the adapter files); then kills rank 1 mid-run and checks
# that the job stops with a message and rank 0's last checkpoint is intact.
#   sudo bash Benchmarks/scale-out/netns.sh       # root (ip netns); ~3 minutes
# Variables: SCRATCH (build folder), BACKBONE (default ~/.cache/graft/quickstart/e5.h5).
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH="${SCRATCH:-.build}"
cache="${GRAFT_CACHE:-$HOME/.cache/graft}"
BACKBONE="${BACKBONE:-$cache/quickstart/e5.h5}"
bash Scripts/install-dependencies.sh
command -v ip > /dev/null || { apt-get install -y -qq iproute2; }
swift build --scratch-path "$SCRATCH" -c release --product adapt
adapt="$(pwd)/$SCRATCH/release/adapt"
"$adapt" data prepare chichewa-bible > /dev/null
work="$(mktemp -d)"
launcher="$work/launch-in-namespace"
remove_namespaces() { ip netns del graft-a 2> /dev/null || true; ip netns del graft-b 2> /dev/null || true; }
trap 'remove_namespaces; rm -rf "$work"' EXIT

# Host 10.77.0.1 is namespace graft-a, host 10.77.0.2 is graft-b; the veth pair is the network between them.
remove_namespaces
ip netns add graft-a
ip netns add graft-b
ip link add graft-veth-a type veth peer name graft-veth-b
ip link set graft-veth-a netns graft-a
ip link set graft-veth-b netns graft-b
ip -n graft-a addr add 10.77.0.1/24 dev graft-veth-a
ip -n graft-b addr add 10.77.0.2/24 dev graft-veth-b
for ns in graft-a graft-b; do ip -n "$ns" link set lo up; done
ip -n graft-a link set graft-veth-a up
ip -n graft-b link set graft-veth-b up
# the link is up: a TCP connection to a closed port of the other host is refused, not lost (no ping on minimal systems)
refusal="$(ip netns exec graft-a timeout 5 bash -c "exec 3<>/dev/tcp/10.77.0.2/9" 2>&1 || true)"
[[ "$refusal" == *refused* ]] || { echo "10.77.0.2 is not reachable from graft-a: $refusal" >&2; exit 1; }
# Open MPI starts its daemon on each "host" through this agent (instead of ssh): into that host's namespace.
cat > "$launcher" <<'EOF'
#!/usr/bin/env bash
host="$1"; shift
case "$host" in 10.77.0.1) ns=graft-a ;; 10.77.0.2) ns=graft-b ;; *) echo "unknown host $host" >&2; exit 1 ;; esac
exec ip netns exec "$ns" bash -c "$*"
EOF
chmod +x "$launcher"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hosts"

common=(mlm --backbone "$BACKBONE" --data chichewa-bible --method seq_bn --batch-size 8 --max-length 48 --gradient-accumulation 2
        --steps 4 --evaluation-texts 4 --threads 1 --checkpoint-every 1)
mpi=(ip netns exec graft-a mpirun --allow-run-as-root --hostfile "$work/hosts" -np 2 --mca plm_rsh_agent "$launcher"
     --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 -x OPENBLAS_NUM_THREADS=1)

echo "== one process"
OPENBLAS_NUM_THREADS=1 "$adapt" "${common[@]}" --output "$work/single.h5" > /dev/null
echo "== two ranks across the veth pair"
"${mpi[@]}" "$adapt" "${common[@]}" --output "$work/shared.h5"
h5diff "$work/single.h5" "$work/shared.h5" "/adapter" "/adapter" && echo "the adapters are identical"

echo "== rank 1 killed after the second update"
# A rank that dies: rank 1 kills itself once the second checkpoint is written; the job must stop, naming it.
cat > "$work/fragile" <<EOF
#!/usr/bin/env bash
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then
    ( while ! grep -q '"step":2' "$work/killed.jsonl" 2> /dev/null; do sleep 0.2; done; kill -9 \$\$ ) &
fi
exec "$adapt" "\$@"
EOF
chmod +x "$work/fragile"
set +e
"${mpi[@]}" "$work/fragile" "${common[@]}" --steps 8 --output "$work/killed.h5" --log "$work/killed.jsonl" > "$work/killed.out" 2>&1
status=$?
set -e
echo "exit status $status; the job's last words:"
grep -iE "rank|exited|signal|abort" "$work/killed.out" | head -5
[ "$status" -ne 0 ] || { echo "the job did not fail" >&2; exit 1; }
step="$("$adapt" info "$work/killed.h5.training.h5" | sed -n 's/^ *@step = //p')"
echo "rank 0's checkpoint holds update $step (one is written after every update)"
echo "== resumed by one process"
OPENBLAS_NUM_THREADS=1 "$adapt" "${common[@]}" --steps 8 --output "$work/killed.h5" --log "$work/killed.jsonl" --resume > /dev/null
echo "updates logged: $(sed -n 's/.*"step":\([0-9]*\).*/\1/p' "$work/killed.jsonl" | tr '\n' ' ')(the killed job's, then the resumed run's from update $((step + 1)))"
