#!/usr/bin/env bash
# tests/mpi/test_sweep_teams.sh OT SHARED_DIR: the MPI sweep driver end to end.
# 4 ranks in teams of 2 run a 5-run sweep (offsite recipe on stories260K, data-parallel in
# each team); the job is killed with SIGKILL mid-way and started again: every run must end
# completed exactly once (no run completed twice, none lost), with world_size 2 and both
# ranks' throughput in its result file. Then a sweep where 2 of 4 runs fail: they are recorded
# as failed, the other runs complete, the sweep exits non-zero. Last, a failure on one rank
# only (rank 0 cannot create the results directory) ends the job with the reason said.
set -euo pipefail
OT=$1
SHARED=$2
# oversubscription: the OMPI_MCA_ variable for Open MPI 4, the PRTE_MCA_ one for Open MPI 5
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
export PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe
T=$(mktemp -d)
trap 'kill -9 -- -$(cat "$T/pgid" 2>/dev/null) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# A check that failed without a word (errexit on; the expected failures run under set +e).
trap 'rc=$?; [[ $- == *e* ]] && echo "FAIL: line $LINENO: $BASH_COMMAND (exit $rc)" >&2' ERR

M=$SHARED/data/models/stories260K
"$OT" convert llama2c --checkpoint "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --out "$T/full" >/dev/null
head -c 20000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/train.txt"
tail -c 4000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/test.txt"
head -c 20000 "$SHARED/data/corpora/tinystories/tinystories_train_head.txt" > "$T/owner.txt"
# The tests' tiny offsite run (tests/tiny_offsite.toml, inputs under $OT_TEST_DIR), longer.
export OT_TEST_DIR=$T
cat > "$T/sweep.toml" <<TOML
extends = "$(cd "$(dirname "$0")/.." && pwd)/tiny_offsite.toml"
[experiment]
name = "teams"
[distill]
block_size = 64
max_steps = 40
save_every = 5
[finetune]
block_size = 64
max_steps = 40
save_every = 5
[full_finetune]
block_size = 64
max_steps = 10
[eval]
block_size = 64
[sweep]
seeds = [0, 1, 2, 3, 4]
TOML

completed() { "$OT" sweep plan "$T/sweep.toml" | grep -c '| completed |' || true; }

echo "== first attempt: 4 ranks, teams of 2; killed once 2 runs are complete"
setsid mpirun -np 4 "$OT" sweep "$T/sweep.toml" --ranks-per-run 2 > "$T/log1" 2>&1 &
echo $! > "$T/pgid"
for _ in $(seq 1 600); do
  [ "$(completed)" -ge 2 ] && break
  kill -0 "$(cat "$T/pgid")" 2>/dev/null || break
  sleep 0.5
done
n1=$(completed)
kill -9 -- -"$(cat "$T/pgid")" 2>/dev/null || true
wait 2>/dev/null || true
echo "killed with $n1 completed"
[ "$n1" -ge 2 ] && [ "$n1" -lt 5 ] || { cat "$T/log1"; fail "expected the kill to land mid-sweep, $n1 of 5 completed"; }
grep -q "team 0" "$T/log1" && grep -q "team 1" "$T/log1" || { cat "$T/log1"; fail "both teams should have taken runs"; }

echo "== second attempt: finishes the sweep"
mpirun -np 4 "$OT" sweep "$T/sweep.toml" --ranks-per-run 2 > "$T/log2" 2>&1 || { cat "$T/log2"; fail "second attempt failed"; }
echo "runs continued from their saved state: $(grep -c 'continuing the interrupted attempt' "$T/log2" || true)"
grep -q "$n1 already completed" "$T/log2" || { cat "$T/log2"; fail "completed runs must be skipped"; }
[ "$(completed)" -eq 5 ] || { "$OT" sweep plan "$T/sweep.toml"; fail "not every run completed"; }

# Exactly once: over both attempts, every run index was reported completed once.
for i in 0 1 2 3 4; do
  n=$(cat "$T/log1" "$T/log2" | grep -c "completed run $i " || true)
  [ "$n" -eq 1 ] || fail "run $i completed $n times"
done
for f in "$T"/results/teams/*.h5; do
  ws=$(h5dump -a /world_size "$f" | grep '(0):' | sed 's/.*(0): *//')
  [ "$ws" = 2 ] || fail "$f: world_size $ws, expected 2"
  nranks=$(h5dump -H -d /ranks/rank "$f" 2>/dev/null | grep -o 'SIMPLE { ( [0-9]* )' | tr -dc '0-9')
  [ "$nranks" = 2 ] || fail "$f: expected the throughput of 2 ranks, found '${nranks}'"
done
ls "$T"/results/teams | grep -v '\.h5$' && fail "leftover files in the results directory" || true

echo "== a failing run is recorded as failed; the teams go on"
: > "$T/empty.txt"   # no text to score: the run fails at its evaluation, on both ranks of its team
sed -e 's/name = "teams"/name = "failing"/' -e 's/^seeds = .*/seeds = [0, 1]/' "$T/sweep.toml" > "$T/failing.toml"
cat >> "$T/failing.toml" <<TOML
[sweep.grid]
"data.heldout.path" = ["$T/test.txt", "$T/empty.txt"]
TOML
set +e
mpirun -np 4 "$OT" sweep "$T/failing.toml" --ranks-per-run 2 > "$T/log3" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || { cat "$T/log3"; fail "a sweep with failed runs must exit non-zero"; }
plan=$("$OT" sweep plan "$T/failing.toml")
[ "$(echo "$plan" | grep -c '| completed |')" -eq 2 ] || { echo "$plan"; cat "$T/log3"; fail "the 2 good runs must complete"; }
[ "$(echo "$plan" | grep -c '| failed |')" -eq 2 ] || { echo "$plan"; fail "the 2 runs on empty text must be recorded as failed"; }
grep -q "no text to score\|fewer than 2 tokens" "$T/log3" || { cat "$T/log3"; fail "the failure should be reported"; }
echo "== a failure on one rank only ends the job instead of leaving the other rank waiting"
: > "$T/not-a-dir"   # only rank 0 creates the results directory: only it fails
set +e
timeout 120 mpirun -np 2 -x OT_FAILURE_WAIT_S=3 "$OT" run "$T/sweep.toml" --index 0 \
  --set "experiment.results_dir=$T/not-a-dir/results" > "$T/log4" 2>&1
rc=$?
set -e
[ "$rc" -ne 124 ] || { cat "$T/log4"; fail "the job hung after rank 0 failed alone"; }
[ "$rc" -ne 0 ] || { cat "$T/log4"; fail "the job must exit non-zero"; }
grep -q "on rank 0 of 2 only; the other ranks cannot go on without it" "$T/log4" || { cat "$T/log4"; fail "the reason should be said"; }
echo "PASS: 5 runs completed exactly once across a SIGKILL; failing runs recorded, the others completed; a one-rank failure ends the job"
