#!/usr/bin/env bash
# tests/faults/memory_flat.sh OT SHARED_DIR [RUNS]: a long sweep (RUNS tiny fine-tuning runs,
# 100 by default, on 2 MPI ranks in teams of 1) completes every run, and each rank's resident
# memory stays flat: the RSS a rank has when it takes a run (printed by the sweep driver and
# recorded as rss_start_mib in the run file) may not grow by more than TOLERANCE_MIB between the
# rank's early runs (its 6th to 15th, after the allocators warmed up) and its last 10.
source "$(dirname "$0")/common.sh"
RUNS=${3:-100}
TOLERANCE_MIB=8   # a leak of 1 MiB (a quarter of the model's weights) per run exceeds it within 10 runs
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe
command -v mpirun >/dev/null || skip "mpirun not found"

seeds=$(seq -s ', ' 0 $((RUNS - 1)))
cat > "$T/long.toml" <<TOML
[experiment]
name = "long"
recipe = "finetune"
results_dir = "$T/results"
work_dir = "$T/work"
[runtime]
threads = 1
[model]
path = "$T/full"
[data.train]
path = "$T/train.txt"
[data.heldout]
path = "$T/test.txt"
[finetune]
data = "train"
trainable = "all"
block_size = 32
batch_size = 2
max_steps = 2
lr = 1e-3
[eval]
data = ["heldout"]
block_size = 32
[sweep]
seeds = [$seeds]
TOML

mpirun -np 2 "$OT" sweep "$T/long.toml" --ranks-per-run 1 > "$T/log" 2>&1 || { tail -30 "$T/log"; fail "the sweep failed"; }
n=$(ls "$T"/results/long/*.h5 | wc -l)
[ "$n" -eq "$RUNS" ] || fail "$n result files, expected $RUNS"
done_runs=$(for f in "$T"/results/long/*.h5; do status_of "$f"; done | grep -c '^completed$' || true)
[ "$done_runs" -eq "$RUNS" ] || fail "$done_runs runs completed, expected $RUNS"
# One RSS per run taken, in each rank's order.
for rank in 0 1; do
  # grep -o: rank 0's queue thread may print into the middle of its team's line.
  grep -o "(rank $rank resident [0-9.]* MiB)" "$T/log" | sed 's/.* resident \([0-9.]*\) MiB)/\1/' > "$T/rss.$rank"
  k=$(wc -l < "$T/rss.$rank")
  [ "$k" -ge 25 ] || { grep resident "$T/log" | head; fail "rank $rank took only $k runs; expected at least 25 of $RUNS"; }
  read -r early late first last < <(awk -v k="$k" '{ v[NR] = $1 }
    END { e = 0; for (i = 6; i <= 15; i++) e += v[i]; l = 0; for (i = k - 9; i <= k; i++) l += v[i];
          printf "%.1f %.1f %.1f %.1f\n", e / 10, l / 10, v[1], v[k] }' "$T/rss.$rank")
  echo "rank $rank: $k runs; resident at run start: first $first MiB, runs 6-15 mean $early MiB, last 10 mean $late MiB, last $last MiB"
  awk -v e="$early" -v l="$late" -v t="$TOLERANCE_MIB" 'BEGIN { exit !(l - e <= t) }' ||
    fail "rank $rank: resident memory grew from $early to $late MiB over the sweep (tolerance $TOLERANCE_MIB MiB)"
done
# The run files carry the same figure.
files=("$T"/results/long/*.h5); f=${files[0]}
[ -n "$(h5attr "$f" rss_start_mib)" ] || fail "$f: no rss_start_mib attribute"
echo "PASS: $RUNS runs on 2 ranks completed; resident memory flat within $TOLERANCE_MIB MiB"
