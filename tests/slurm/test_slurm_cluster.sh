#!/usr/bin/env bash
# tests/slurm/test_slurm_cluster.sh OT OT_MPI_TESTS SHARED_DIR REPO: sweeps on a real Slurm.
# Starts munged + slurmctld + slurmd on localhost (slurm/local-cluster/up.sh, state in a temp
# dir, free ports), then:
#  1. `ot submit --mode array` of a 4-run sweep (tiny offsite runs on stories260K); array task 0
#     gets USR1 mid fine-tuning (as --signal=B:USR1@T would send it), saves its state, exits 75
#     and requeues itself; all 4 runs end completed, the preempted one in 2 or more attempts with
#     evaluation values bit-identical to the same run executed without interruption;
#     `ot status` shows them completed;
#  2. `ot submit --mode allocation`: one job, `srun --mpi=pmix ot sweep --ranks-per-run 2`,
#     2 runs, each data-parallel on 2 ranks (world_size 2 in the result files);
#  3. a 2-task MPI step under `srun --mpi=pmix`: the data-parallel equivalence tests;
#  4. `scancel` of a running task: ot saves its state and the job is not requeued (`ot status`:
#     interrupted); another task's ot killed with SIGKILL: `ot status` says stopped;
# and stops every daemon it started. Exit 77 (skipped) when Slurm or munge is not installed.
set -euo pipefail
OT=$1; MPI_TESTS=$2; SHARED=$3; REPO=$4
for bin in slurmctld slurmd munged sbatch; do
  command -v "$bin" >/dev/null || { echo "SKIP: $bin not installed"; exit 77; }
done
T=$(mktemp -d)
export SLURM_SANDBOX=$T/slurm
# Ports of our own, away from a system Slurm's 6817/6818.
export SLURMCTLD_PORT=$(( 20000 + ($$ % 5000) * 2 )) SLURMD_PORT=$(( 20001 + ($$ % 5000) * 2 ))
cleanup() {
  bash "$REPO/slurm/local-cluster/down.sh" >/dev/null 2>&1 || true
  if [ -n "${OT_KEEP_TEST_DIR:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/results/*/slurm/logs/*; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
step() { echo "== $*"; }

step "cluster up"
bash "$REPO/slurm/local-cluster/up.sh"
export SLURM_CONF=$SLURM_SANDBOX/etc/slurm.conf

M=$SHARED/data/models/stories260K
"$OT" convert llama2c --checkpoint "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --out "$T/full" >/dev/null
head -c 20000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/train.txt"
tail -c 4000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/test.txt"
head -c 20000 "$SHARED/data/corpora/tinystories/tinystories_train_head.txt" > "$T/owner.txt"
# The tests' tiny offsite run (tests/tiny_offsite.toml, inputs under $OT_TEST_DIR), with a
# fine-tuning long enough to be requeued mid-way.
export OT_TEST_DIR=$T
sweep() {  # sweep NAME RESULTS WORK SEEDS
  cat <<TOML
extends = "$REPO/tests/tiny_offsite.toml"
[experiment]
name = "$1"
results_dir = "$2"
work_dir = "$3"
[distill]
block_size = 64
batch_size = 4
max_steps = 6
[finetune]
eval_data = "heldout"
block_size = 64
batch_size = 4
max_steps = 400
lr = 3e-4
eval_every = 200
save_every = 1
[full_finetune]
block_size = 64
batch_size = 4
max_steps = 4
[eval]
block_size = 64
[sweep]
seeds = [$4]
TOML
}
sweep array "$T/results" "$T/work" "0, 1, 2, 3" > "$T/array.toml"
sweep array "$T/reference" "$T/work-reference" "0, 1, 2, 3" > "$T/reference.toml"
sweep alloc "$T/results" "$T/work" "5, 6" > "$T/alloc.toml"
cd "$T"

wait_job() {  # wait_job JOBID SECONDS: until squeue no longer lists it
  for _ in $(seq 1 $(( $2 * 5 ))); do
    squeue -h -j "$1" 2>/dev/null | grep -q . || return 0
    sleep 0.2
  done
  squeue -j "$1"; fail "job $1 still queued after $2 s"
}

step "array mode: 4 runs, task 0 preempted mid fine-tuning"
"$OT" submit array.toml --mode array --throttle 2 --time 10 --signal-seconds 60 > submit.out || fail "ot submit: $(cat submit.out)"
jid=$(grep -o 'submitted job [0-9]*' submit.out | tr -dc '0-9')
[ -n "$jid" ] || fail "no job id in: $(cat submit.out)"
run0=$("$OT" sweep plan array.toml | awk -F'|' '$2 ~ /^ 0 $/ {gsub(/ /, "", $3); print $3}')
for _ in $(seq 1 600); do [ -f "work/runs/array/$run0/finetune.state" ] && break; sleep 0.1; done
[ -f "work/runs/array/$run0/finetune.state" ] || fail "run 0 never reached fine-tuning"
# scancel keeps retrying a signal Slurm answers "try again later" for, and would then signal the
# requeued task too: one delivery is enough, the checks below see whether it landed.
timeout 3 scancel --signal=USR1 --batch "${jid}_0" || true
"$OT" status array.toml > status-mid.out || fail "ot status failed"
wait_job "$jid" 240
"$OT" status array.toml | tee status.out
grep -q "4 run(s): 4 completed" status.out || fail "not all 4 array runs completed"
grep -q "requeueing" results/array/slurm/logs/"${jid}"_0.out || fail "task 0 was not requeued"
attempts=$(h5dump -a /attempts "results/array/$run0.h5" | grep '(0):' | sed 's/.*(0): *//')
[ "${attempts:-0}" -ge 2 ] || fail "run 0 took ${attempts:-no} attempt(s), expected at least 2 (it was preempted)"
"$OT" run --sweep reference.toml --index 0 > /dev/null 2>&1 || fail "reference run failed"
a=$(h5dump -d /eval/value "results/array/$run0.h5" | grep -v HDF5)
b=$(h5dump -d /eval/value "reference/array/$run0.h5" | grep -v HDF5)
[ "$a" = "$b" ] || fail "the preempted run's evaluation differs from an uninterrupted run: $a vs $b"
echo "preempted run $run0: $attempts attempts, evaluation identical to the uninterrupted run"

step "allocation mode: srun --mpi=pmix ot sweep --ranks-per-run 2"
"$OT" submit alloc.toml --mode allocation --ranks-per-run 2 --time 10 > submit2.out || fail "ot submit: $(cat submit2.out)"
jid2=$(grep -o 'submitted job [0-9]*' submit2.out | tr -dc '0-9')
wait_job "$jid2" 240
"$OT" status alloc.toml | tee status2.out
grep -q "2 run(s): 2 completed" status2.out || fail "not both allocation runs completed"
for f in results/alloc/*.h5; do
  ws=$(h5dump -a /world_size "$f" | grep '(0):' | sed 's/.*(0): *//')
  [ "$ws" = 2 ] || fail "$f: world_size $ws, expected 2"
done

step "a 2-task MPI step under srun --mpi=pmix"
OMP_NUM_THREADS=1 srun --mpi=pmix -n 2 "$MPI_TESTS" --gtest_filter='DataParallel.*Float32:MpiAllReduce.*' > srun.out 2>&1 ||
  { cat srun.out; fail "srun --mpi=pmix -n 2 failed"; }
grep -q "PASSED" srun.out || { cat srun.out; fail "MPI tests did not pass under srun"; }
step "scancel: the run saves its state and the job stays cancelled; a killed job's run shows as stopped"
sweep cancel "$T/results" "$T/work" "7, 8" > "$T/cancel.toml"
cancel_run() {  # cancel_run INDEX scancel|kill9: submit run INDEX alone, end it mid fine-tuning
  local i=$1 how=$2
  "$OT" submit cancel.toml --mode array --time 10 --set "sweep.seeds=[$(( 7 + i ))]" > "submit-c$i.out" ||
    fail "ot submit: $(cat "submit-c$i.out")"
  local j r
  j=$(grep -o 'submitted job [0-9]*' "submit-c$i.out" | tr -dc '0-9')
  r=$("$OT" sweep plan cancel.toml | awk -F'|' -v i="$i" '$2 ~ "^ " i " $" {gsub(/ /, "", $3); print $3}')
  for _ in $(seq 1 600); do [ -f "work/runs/cancel/$r/finetune.state" ] && break; sleep 0.1; done
  [ -f "work/runs/cancel/$r/finetune.state" ] || fail "cancel run $i never reached fine-tuning"
  if [ "$how" = scancel ]; then scancel "$j"  # TERM first, as users cancel
  else pkill -9 -f "run --sweep $T/cancel.toml" || fail "no ot process of job $j to kill"; fi  # as the OOM killer would
  wait_job "$j" 120
  sleep 3  # a requeued job would be listed again by now
  squeue -h -j "$j" 2>/dev/null | grep -q . && fail "job $j came back after scancel"
  if grep -q "requeueing" results/cancel/slurm/logs/"${j}"_0.out 2>/dev/null; then fail "job $j requeued itself after scancel"; fi
  return 0
}
cancel_run 0 scancel   # TERM: ot saves its state and exits 75; no requeue
cancel_run 1 kill9     # ot killed outright: no chance to save, its file still says running
"$OT" status cancel.toml | tee status3.out
grep -q "| interrupted |" status3.out || fail "the cancelled run should show as interrupted"
grep -q "| stopped |" status3.out || fail "the killed run should show as stopped (its file says running, no job holds it)"

echo "PASS: array (with preemption and requeue), allocation, srun --mpi=pmix and scancel on a real Slurm"
