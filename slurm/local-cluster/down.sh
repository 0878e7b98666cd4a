#!/usr/bin/env bash
# slurm/local-cluster/down.sh: stops the daemons slurm/local-cluster/up.sh started in
# $SLURM_SANDBOX (jobs cancelled first), waiting until each has exited.
SB=${SLURM_SANDBOX:?set SLURM_SANDBOX to the directory given to up.sh}
export SLURM_CONF=$SB/etc/slurm.conf
alive() { local p; p=$(cat "$SB/run/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p"; }
# scancel retries for a minute when slurmctld is gone: only ask a running controller.
if alive slurmctld >/dev/null; then timeout 10 scancel --user="$(id -un)" 2>/dev/null || true; fi
stop() {
  local pids=() name p
  for name in "$@"; do p=$(alive "$name") && { kill -TERM "$p"; pids+=("$p"); }; rm -f "$SB/run/$name.pid"; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p"
  done
  return 0
}
stop slurmd slurmctld
stop munged
