#!/usr/bin/env bash
# scripts/launch.sh: how the scripts that run experiments on this machine start `ot`: as a
# data-parallel team of single-threaded MPI ranks, one per core, rather than one process of
# several threads. At the quickstart's shape two ranks train 2x faster than two threads, and
# a busy neighbour on the machine slows them in proportion instead of stalling every OpenMP
# barrier (README, "Speed"). Sourced, it sets:
#   OT_LAUNCH   an array to put before the ot command line (empty: one process)
#   OT_RANKS    the team size: the largest power of two <= cores, at most 8 (the quickstart's
#               global batch of 8 sequences splits evenly), or $OT_RANKS when set
# With one core, or without a working mpirun, it is one process, and it says why.
OT_LAUNCH=()
ot_cores=$(nproc 2>/dev/null || echo 1)
if [ -z "${OT_RANKS:-}" ]; then
  OT_RANKS=1
  while [ $((OT_RANKS * 2)) -le "$ot_cores" ] && [ $((OT_RANKS * 2)) -le 8 ]; do OT_RANKS=$((OT_RANKS * 2)); done
fi
case "$OT_RANKS" in '' | *[!0-9]* | 0) echo "launch: OT_RANKS must be a positive integer, got '$OT_RANKS'" >&2; exit 2 ;; esac
if [ "$OT_RANKS" -gt 1 ]; then
  ot_mpirun=${OT_MPIRUN:-mpirun}
  ot_mpi_flags=()
  if "$ot_mpirun" --version 2>/dev/null | grep -q "Open MPI"; then
    # Slots are hardware threads (a VM's vCPUs), and Open MPI asks root to say it means it.
    ot_mpi_flags=(--use-hwthread-cpus --bind-to core)
    if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  fi
  if "$ot_mpirun" -np "$OT_RANKS" "${ot_mpi_flags[@]}" true > /dev/null 2>&1; then
    OT_LAUNCH=("$ot_mpirun" -np "$OT_RANKS" "${ot_mpi_flags[@]}")
  else
    echo "launch: '$ot_mpirun -np $OT_RANKS' does not start here; running as one process" >&2
    OT_RANKS=1
  fi
fi
export OT_RANKS
