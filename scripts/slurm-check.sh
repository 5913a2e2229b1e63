#!/usr/bin/env bash
# scripts/slurm/extract.sbatch on a real Slurm: a one-node cluster on
# 127.0.0.1 (munged, slurmctld, slurmd; state in a temporary folder), an
# array of 4 tasks over a generated image folder, then:
#   1. the parts' union equals a single-process run, row for row (paths,
#      labels, feature bits);
#   2. one task, resubmitted, is killed mid-run with SIGKILL (its partial
#      file stays), resubmitted again, and the union is checked once more,
#      with no partial file left.
# It stops the daemons it started, by their pids, whatever happens.
#
#   scripts/slurm-check.sh [--install]
#
# --install: apt-get install slurm-wlm and munge when sbatch is missing
# (root only). Without Slurm, it says why it skipped and exits 0.
# Environment: EXTRACT (the binary; default target/release/extract, built
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
say() { echo "slurm-check: $*" >&2; }

install=0
for a in "$@"; do
    case "$a" in
        --install) install=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) say "unknown option $a"; exit 2 ;;
    esac
done

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing slurm-wlm and munge (apt-get)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >/tmp/slurm-check-apt.log 2>&1; then
            say "skipped: apt-get could not install slurm-wlm and munge (/tmp/slurm-check-apt.log)"
            exit 0
        fi
    else
        why="sbatch or munged is not installed"
        [ "$install" = 1 ] && why="$why, and this is not a root shell with apt-get"
        say "skipped: $why (apt-get install slurm-wlm munge, then run scripts/slurm-check.sh)"
        exit 0
    fi
fi

scripts/setup.sh >/dev/null
py=$repo/.venv/bin/python
if [ -z "${EXTRACT:-}" ]; then
    EXTRACT=${CARGO_TARGET_DIR:-$repo/target}/release/extract
    [ -x "$EXTRACT" ] || cargo build --release --quiet --bins
fi
EXTRACT=$(cd "$(dirname "$EXTRACT")" && pwd)/$(basename "$EXTRACT")

tmp=$(mktemp -d /tmp/slurm-check.XXXXXX)
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        say "failed; daemon logs follow"
        tail -n 20 "$tmp"/*.log >&2 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# munge: a key of our own, a socket in the temporary folder.
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/logs"
chmod 711 "$tmp" "$tmp/munge"
head -c 1024 /dev/urandom >"$tmp/munge/munge.key"
chmod 400 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
munged -F --force --key-file="$tmp/munge/munge.key" --socket="$socket" --pid-file="$tmp/munge/munged.pid" \
    --log-file="$tmp/munged.log" --seed-file="$tmp/munge/seed" >"$tmp/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { say "munged did not start"; exit 1; }

# Free ports, so a Slurm already on this machine is left alone.
read -r ctld_port slurmd_port < <("$py" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
cat >"$tmp/slurm.conf" <<EOF
ClusterName=check
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=check1 NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=check Nodes=check1 Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N check1 -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
    state=$(sinfo -h -n check1 -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.2
done
[ "$state" = idle ] || { say "the node did not come up (state: ${state:-none})"; exit 1; }
say "one-node cluster up (slurmctld :$ctld_port, slurmd :$slurmd_port, $cpus CPUs)"

# The data: 120 images in 3 classes; the full test model, slow enough to
# kill a task mid-run.
"$py" classify/tests/py/make_dataset.py "$tmp/images" --classes 3 --train 40 --val 1 >/dev/null
images=$tmp/images/train
model=$repo/models/resnet50.onnx
single=$tmp/single.parquet
out=$tmp/parts/
"$EXTRACT" --model "$model" --images "$images" --layer layer2,avgpool --threads 1 --out "$single" 2>"$tmp/logs/single.log"

submit() { # submit ARRAY [EXTRACT_ARGS] [--wait]: prints the job id
    local array=$1 extra=${2:-} wait=${3:-}
    # Through the environment: --export=NAME=VALUE cannot hold a comma.
    SHARDS=$shards IMAGES=$images OUT=$out LAYER=layer2,avgpool MODEL=$model EXTRACT=$EXTRACT EXTRACT_ARGS=$extra \
        sbatch --parsable $wait --export=ALL --array="$array" --cpus-per-task=1 --mem=1G --chdir="$repo" \
        --output="$tmp/logs/slurm-%A_%a.out" scripts/slurm/extract.sbatch
}
compare() {
    "$py" scripts/oracles/parts_equal.py "${out%/}" "$single" 4
}

shards="" # the whole array: --shard auto, from the array's own variables
job=$(submit 0-3 "" --wait) || { say "array job failed:"; cat "$tmp"/logs/slurm-*.out >&2; exit 1; }
same=$(compare) || exit 1
say "array job $job (4 tasks): $same"

# Task 2 again, alone (so SHARDS=4: --shard auto/4), one image per batch,
# killed once its partial file exists.
shards=4
rm "$out/part-00002-of-00004.parquet"
job=$(submit 2 "--batch 1")
partial=""
for _ in $(seq 600); do
    partial=$(find "$out" -name '.part-00002-of-00004.parquet.*.partial' | head -n 1)
    [ -n "$partial" ] && break
    sleep 0.05
done
[ -n "$partial" ] || { say "task 2's partial file never appeared:"; cat "$tmp"/logs/slurm-"$job"_2.out >&2; exit 1; }
scancel --signal=KILL --full "$job"
for _ in $(seq 100); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.2; done
[ -e "$partial" ] && [ ! -e "$out/part-00002-of-00004.parquet" ] \
    || { say "after SIGKILL: expected a partial file and no part"; ls -la "$out" >&2; exit 1; }
say "task 2 (job $job) killed mid-run with SIGKILL: $(basename "$partial") left, no part"
job=$(submit 2 "" --wait) || { say "resubmitted task failed:"; cat "$tmp"/logs/slurm-*_2.out >&2; exit 1; }
left=$(find "$out" -name '*.partial' | wc -l)
[ "$left" = 0 ] || { say "$left partial files left after the rerun"; exit 1; }
same=$(compare) || exit 1
say "task 2 resubmitted (job $job): $same; no partial file left"
say "passed"
