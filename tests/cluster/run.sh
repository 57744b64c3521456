#!/usr/bin/env bash
# The SLURM path of dyadflow, tested on a real one-node SLURM cluster (not a mock).
#
#   make test-cluster            (or: sudo tests/cluster/run.sh)
#   DYADFLOW_CLUSTER_BENCH="command" tests/cluster/run.sh   (a benchmark on the cluster instead)
#
# 1. Installs Debian's slurm-wlm and munge with apt-get, if they are missing.
# 2. Starts a private cluster on 127.0.0.1: munged with a fresh key on its own socket,
#    slurmctld and slurmd with a slurm.conf in a temporary directory, on free ports.
#    Nothing under /etc is touched, and no service of the machine is used or stopped.
# 3. Runs the demo study with --profile profiles/slurm in one temporary directory and
#    locally (--cores 2) in another.
# 4. Checks (tests/cluster/check.py) that every file under results/ is byte-identical,
#    PDFs included, and that every non-local job went through sbatch: a SLURM job id in
#    the Snakemake log, a COMPLETED state in squeue, a slurmctld submission record and a
#    SLURM log file of the job's own Snakemake run.
# 5. Stops the daemons it started, by PID (trap on exit), also when a step fails.
#
# Needs root: slurmd runs jobs as root here, and apt-get installs packages.
# DYADFLOW_CLUSTER_KEEP=1 keeps the temporary directory for inspection.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV_BIN="${DYADFLOW_VENV_BIN:-$REPO/.venv/bin}"
PYTHON="$VENV_BIN/python"
SNAKEMAKE="$VENV_BIN/snakemake"
START=$SECONDS

say() { printf '[cluster %3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { printf '[cluster %3ds] FAILED: %s\n' "$((SECONDS - START))" "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (slurmd must run as root; packages are installed with apt-get): run 'sudo make test-cluster'"
[ -x "$SNAKEMAKE" ] || die "no $SNAKEMAKE: run 'make venv' first"

# --- 1. Debian packages, only when missing ------------------------------------------
PACKAGES=(slurm-wlm munge)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  # Keep the packages' own services from starting: this test runs private daemons.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  status=0
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } || status=$?
  if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$status" -eq 0 ] || die "apt-get install ${missing[*]} failed"
fi
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || die "$tool not found after installing ${PACKAGES[*]}"
done
export PATH="$PATH:/usr/sbin:/sbin"

# --- 2. A private one-node cluster ----------------------------------------------------
WORK="$(mktemp -d /tmp/dyadflow-cluster.XXXXXX)"
chmod 755 "$WORK"
mkdir -p "$WORK"/{etc,munge,log,run,spool/slurmctld,spool/slurmd}
DAEMON_PIDS=()   # PIDs of the daemons started here, in start order
OK=""

stop_daemons() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "${CTLD_PID:-}" ] && kill -0 "$CTLD_PID" 2>/dev/null; then
    # cancel what is left of this run (only jobs of the private cluster: SLURM_CONF)
    timeout 10 scancel --user "$(id -un)" 2>/dev/null
    for _ in $(seq 20); do [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  # stop the daemons by PID, the last started first
  for ((i = ${#DAEMON_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${DAEMON_PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${DAEMON_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "daemon $pid did not stop on TERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  [ ${#DAEMON_PIDS[@]} -gt 0 ] && say "stopped the daemons started here (PIDs ${DAEMON_PIDS[*]})"
  if [ -n "$OK" ] && [ "${DYADFLOW_CLUSTER_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    say "kept $WORK (logs in $WORK/log, runs in $WORK/cluster and $WORK/local)"
  fi
  exit "$rc"
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

# Each daemon runs in its own session: a Ctrl-C (or CI's stop signal) meant for the test
# reaches Snakemake, which then cancels its jobs while the cluster is still up; the
# daemons are stopped afterwards, by PID, in stop_daemons.
start_daemon() {   # start_daemon NAME COMMAND...
  local name=$1
  shift
  setsid "$@" >"$WORK/log/$name.out" 2>&1 &
  DAEMON_PIDS+=($!)
}

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

HOST="$(hostname)"
NCPU="$(nproc)"
# slurmd -C prints this machine's node line (CPUs, sockets, cores, RealMemory)
NODE_LINE="$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=')" || true
[ -n "$NODE_LINE" ] || NODE_LINE="NodeName=$HOST CPUs=$NCPU RealMemory=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
NODE_LINE="$(sed -E "s/^NodeName=[^ ]+/NodeName=$HOST NodeAddr=127.0.0.1/" <<<"$NODE_LINE") State=UNKNOWN"

MUNGE_SOCKET="$WORK/munge/munge.socket"
export SLURM_CONF="$WORK/etc/slurm.conf"
cat > "$SLURM_CONF" <<EOF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$WORK/spool/slurmctld
SlurmdSpoolDir=$WORK/spool/slurmd
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs stay in squeue for an hour: the check reads their states after the local run
MinJobAge=3600
$NODE_LINE
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
say "slurm.conf: $SLURM_CONF ($NODE_LINE)"
# Every SLURM command finds the private cluster through SLURM_CONF, which sbatch passes
# on to the jobs (--export=ALL). Only the srun that the executor's jobstep plugin calls
# inside each job runs with the SLURM_* variables scrubbed, so it would look for
# /etc/slurm/slurm.conf. Rather than write to /etc (and clash with a real installation
# or another run of this test), put an srun first on PATH that restores SLURM_CONF.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" > "$WORK/bin/srun"
chmod 755 "$WORK/bin/srun"
export PATH="$WORK/bin:$PATH"

# munge: a fresh key, our own socket
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$WORK/munge"
chmod 400 "$WORK/munge/munge.key"
start_daemon munged munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$WORK/run/munged.pid" --log-file="$WORK/log/munged.log" --seed-file="$WORK/munge/munged.seed"
for _ in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCKET" ] || die "munged did not start: $(cat "$WORK/log/munged.out" "$WORK/log/munged.log" 2>/dev/null)"
munge --socket="$MUNGE_SOCKET" -n | unmunge --socket="$MUNGE_SOCKET" >/dev/null || die "munge round trip failed"

start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
CTLD_PID=$!
start_daemon slurmd slurmd -D -f "$SLURM_CONF" -N "$HOST"
say "started munged, slurmctld, slurmd (PIDs ${DAEMON_PIDS[*]})"

state=""
for _ in $(seq 120); do
  for pid in "${DAEMON_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a daemon exited (PID $pid): $(tail -n 20 "$WORK"/log/*.out "$WORK"/log/slurm*.log 2>/dev/null)"
  done
  state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || die "node $HOST is not idle (state '$state'): $(tail -n 20 "$WORK"/log/slurm*.log)"
# the PIDs to stop are the daemons themselves (their own PID files say so)
for name in munged slurmctld slurmd; do
  pid="$(tr -d '[:space:]' <"$WORK/run/$name.pid" 2>/dev/null || true)"
  [[ -n "$pid" && " ${DAEMON_PIDS[*]} " == *" $pid "* ]] || die "$name runs as PID '$pid', not one of ${DAEMON_PIDS[*]}"
done
sinfo
# the cluster works: a one-line batch job runs and completes
probe="$(sbatch --parsable --wait -o "$WORK/log/probe.out" --wrap 'echo probe on $(hostname)')" || die "probe job failed"
say "probe job $probe ran: $(cat "$WORK/log/probe.out")"

# A benchmark instead of the test (bench/report_build.py --executor slurm): the command in
# DYADFLOW_CLUSTER_BENCH runs from the repository on this private cluster, then the daemons stop.
if [ -n "${DYADFLOW_CLUSTER_BENCH:-}" ]; then
  say "benchmark on the private cluster: $DYADFLOW_CLUSTER_BENCH"
  (cd "$REPO" && bash -c "$DYADFLOW_CLUSTER_BENCH") || die "the benchmark failed"
  OK=1
  exit 0
fi

# --- 3. The demo study, on the cluster and locally ------------------------------------
CONFIG_REL="config/config.yaml"
prepare_study() {   # the demo study as the repository ships it: its config and data
  mkdir -p "$1"
  cp -a "$REPO/config" "$REPO/data" "$1/"
}
prepare_study "$WORK/cluster"
prepare_study "$WORK/local"

say "running the demo study on SLURM (--profile profiles/slurm) in $WORK/cluster"
t0=$SECONDS
# The test-only settings below shorten the status polling (the profile keeps the
# plugin's polite defaults for real clusters) and keep the SLURM logs of successful
# jobs, which this test inspects.
# (bounded: if the cluster hangs, Snakemake gets an interrupt, cancels its jobs and stops)
(cd "$WORK/cluster" && timeout --foreground -s INT -k 120 900 \
  "$SNAKEMAKE" --snakefile "$REPO/Snakefile" --profile "$REPO/profiles/slurm" \
  --configfile "$CONFIG_REL" \
  --slurm-init-seconds-before-status-checks 1 --seconds-between-status-checks 1 \
  --slurm-keep-successful-logs >"$WORK/log/snakemake-cluster.out" 2>&1) \
  || { tail -n 60 "$WORK/log/snakemake-cluster.out"; die "the SLURM run failed (full output: $WORK/log/snakemake-cluster.out)"; }
CLUSTER_TIME=$((SECONDS - t0))
say "SLURM run done in ${CLUSTER_TIME}s"
# the SLURM run left a complete, consistent state: nothing is left to do
(cd "$WORK/cluster" && "$SNAKEMAKE" --snakefile "$REPO/Snakefile" --profile "$REPO/profiles/slurm" \
  --configfile "$CONFIG_REL" -n >"$WORK/log/snakemake-cluster-rerun.out" 2>&1) \
  && grep -q "Nothing to be done" "$WORK/log/snakemake-cluster-rerun.out" \
  || { cat "$WORK/log/snakemake-cluster-rerun.out"; die "a rerun after the SLURM run still has jobs to do"; }
say "a dry rerun with the SLURM profile has nothing to do"

say "running the demo study locally (--cores 2) in $WORK/local"
t0=$SECONDS
(cd "$WORK/local" && "$SNAKEMAKE" --snakefile "$REPO/Snakefile" --cores 2 --configfile "$CONFIG_REL" \
  >"$WORK/log/snakemake-local.out" 2>&1) \
  || { tail -n 60 "$WORK/log/snakemake-local.out"; die "the local run failed (full output: $WORK/log/snakemake-local.out)"; }
say "local run done in $((SECONDS - t0))s"

# --- 4. Identical outputs; every cluster job went through sbatch ------------------------
"$PYTHON" "$REPO/tests/cluster/check.py" --local "$WORK/local" --cluster "$WORK/cluster" \
  --slurmctld-log "$WORK/log/slurmctld.log" --profile "$REPO/profiles/slurm/config.yaml" \
  || die "checks failed"

OK=1
say "PASSED: SLURM run ${CLUSTER_TIME}s, whole test $((SECONDS - START))s"
