#!/usr/bin/env bash
# slurm/local-cluster/up.sh: a real single-node Slurm (munged + slurmctld + slurmd) on
# localhost, without systemd or root-owned state: config, keys, sockets, spool and logs all
# live under $SLURM_SANDBOX. For tests and for trying `ot submit` on a workstation.
#   SLURM_SANDBOX=/tmp/sb SLURMCTLD_PORT=6817 SLURMD_PORT=6818 bash slurm/local-cluster/up.sh
#   export SLURM_CONF=$SLURM_SANDBOX/etc/slurm.conf      # then sbatch, squeue, ot submit ...
#   bash slurm/local-cluster/down.sh                     # stops exactly what up.sh started
set -euo pipefail
SB=${SLURM_SANDBOX:?set SLURM_SANDBOX to a directory for the cluster state}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
D_PORT=${SLURMD_PORT:-6818}
for bin in munged mungekey slurmctld slurmd sinfo; do
  command -v "$bin" >/dev/null || { echo "up.sh: '$bin' not found (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 3; }
done
mkdir -p "$SB"/{etc,munge,log,run,spool/ctld,spool/d}
chmod 711 "$SB/munge"   # munged refuses a socket directory others cannot traverse
[ -f "$SB/munge/munge.key" ] || mungekey --create --keyfile="$SB/munge/munge.key"
chmod 400 "$SB/munge/munge.key"
munged --socket="$SB/munge/munge.sock" --key-file="$SB/munge/munge.key" --pid-file="$SB/run/munged.pid" \
  --log-file="$SB/log/munged.log" --seed-file="$SB/munge/seed" --force

cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it honours OMP_NUM_THREADS
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$SB/etc/slurm.conf" <<CONF
ClusterName=offsite-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long before it may start again (default 120 s)
AuthInfo=socket=$SB/munge/munge.sock,cred_expire=10
StateSaveLocation=$SB/spool/ctld
SlurmdSpoolDir=$SB/spool/d
SlurmctldPidFile=$SB/run/slurmctld.pid
SlurmdPidFile=$SB/run/slurmd.pid
SlurmctldLogFile=$SB/log/slurmctld.log
SlurmdLogFile=$SB/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$SB/log/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
MessageTimeout=10
KillWait=5
MinJobAge=300
InactiveLimit=0
Waittime=0
DefMemPerCPU=1000
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$SB/etc/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost   # the node is "localhost" whatever this host is called
for _ in $(seq 1 150); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  [ "$state" = idle ] && { echo "slurm up: export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
echo "up.sh: the node did not become idle (state '$state'); logs in $SB/log" >&2
exit 1
