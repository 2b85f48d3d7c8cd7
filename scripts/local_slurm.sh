#!/usr/bin/env bash
# A one-node SLURM cluster on this host, for the sweep tests and for trying `charlm sweep`.
#
#   bash scripts/local_slurm.sh start    # install slurm-wlm + munge if missing, configure,
#                                        # start munged, slurmctld, slurmd; wait for `sinfo` idle
#   bash scripts/local_slurm.sh status   # daemons' process ids and `sinfo`
#   bash scripts/local_slurm.sh stop     # stop slurmd, slurmctld, munged by their process ids
#
# Needs root (it writes /etc/slurm/slurm.conf and /etc/munge/munge.key) and Debian/Ubuntu
# packages (apt-get). One node: this host, with its CPUs (`nproc`) and 90% of its memory;
# one partition `debug` (default). Logs: /var/log/slurm/. An existing slurm.conf that this
# script did not write is left alone (set LOCAL_SLURM_FORCE=1 to replace it).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by charlm scripts/local_slurm.sh"
PIDS=(/run/munge/munged.pid /run/slurmctld.pid /run/slurmd.pid)
WAIT_S=${LOCAL_SLURM_WAIT_S:-60}

say() { echo "local_slurm: $*"; }
die() { echo "local_slurm: error: $*" >&2; exit 1; }

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get"
    say "installing slurm-wlm and munge (apt-get)"
    local t0=$SECONDS
    apt-get update -qq >/dev/null
    # the packages' service scripts cannot start daemons in a container: that is fine here
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    say "installed in $((SECONDS - t0)) s"
}

configure() {
    local host cpus mem_kb mem_mb
    host=$(hostname)
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb * 9 / 10 / 1024))
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    chown munge:munge /run/munge
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF" && [[ -z ${LOCAL_SLURM_FORCE:-} ]]; then
        die "$CONF exists and was not written by this script (LOCAL_SLURM_FORCE=1 replaces it)"
    fi
    cat > "$CONF" <<CONF
$MARK
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=10
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
}

start() {
    [[ $(id -u) == 0 ]] || die "start needs root (it configures and starts system daemons)"
    local t0=$SECONDS
    install
    configure
    alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
    munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
    alive /run/slurmctld.pid || /usr/sbin/slurmctld
    alive /run/slurmd.pid || /usr/sbin/slurmd
    local waited=0
    until sinfo -h -o "%t" 2>/dev/null | grep -qx "idle"; do
        ((waited < 2 * WAIT_S)) || { sinfo >&2 || true; die "node not idle after ${WAIT_S} s"; }
        sleep 0.5
        waited=$((waited + 1))  # half-seconds
    done
    say "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %a %D %t %N')"
}

stop() {
    local pidfile pid
    for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
        if alive "$pidfile"; then
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            say "stopped $(basename "$pidfile" .pid) ($pid)"
        fi
    done
}

status() {
    local pidfile
    for pidfile in "${PIDS[@]}"; do
        if alive "$pidfile"; then
            say "$(basename "$pidfile" .pid) running ($(cat "$pidfile"))"
        else
            say "$(basename "$pidfile" .pid) not running"
        fi
    done
    command -v sinfo >/dev/null && sinfo || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
