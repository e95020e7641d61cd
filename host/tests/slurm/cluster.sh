#!/usr/bin/env bash
# A one-node Slurm cluster on loopback, for the Slurm executor's tests (and for trying
# `metarl run --executor slurm` on one machine):
#
#   bash host/tests/slurm/cluster.sh start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`
#   bash host/tests/slurm/cluster.sh stop DIR
#
# Needs root (or passwordless sudo) and Debian's slurm-wlm and munge (`.ci/setup` installs them). Everything the
# daemons write (state, spool, logs, munge's socket) stays under DIR, and the ports are
# chosen free, so several clusters can run side by side. Settings: ../shared/FACTS.md,
# "Slurm on one node".
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop DIR}")

stop() {
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munge/munged.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The daemons need root (slurmd runs jobs as their users): as another user, go through
# passwordless sudo where there is one.
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n bash "$(realpath "$0")" "$cmd" "$dir"
    fi
    echo "error: cluster.sh needs root or passwordless sudo (slurmd runs jobs as their users)" >&2
    exit 1
fi

case "$cmd" in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
for tool in munged mungekey slurmctld slurmd sbatch; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found: apt-get install slurm-wlm munge (bash .ci/setup does)" >&2
        exit 1
    fi
done

mkdir -p "$dir"/{munge,state,spool,log}
chown munge:munge "$dir/munge"
chmod 0700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" --force 2>/dev/null \
    || mungekey -c -k "$dir/munge/munge.key"
chown munge:munge "$dir/munge/munge.key"
chmod 0400 "$dir/munge/munge.key"
# munged refuses a socket directory others can write to; the run directory's parents are fine.
runuser -u munge -- munged --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed" --force

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=metarl-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
ReturnToService=2
MpiDefault=none
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
MinJobAge=300
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 300); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    if [ "$state" = idle ]; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.1
done
echo "error: the Slurm node did not become idle in 30 s (state: ${state:-none}); see $dir/log" >&2
stop
exit 1
