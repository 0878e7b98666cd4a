#!/usr/bin/env bash
# tests/mpi/test_bench_ranks.sh OT SHARED_DIR: `ot bench offsite --ranks 2` starts each method
# as a data-parallel team of 2 (mpirun) sharing the batch, and reports the team's throughput
# once; a batch that does not split over the ranks is refused before anything starts. Also
# scripts/launch.sh, the quickstart's launcher: a team by default, one process on request.
set -euo pipefail
OT=$1
SHARED=$2
export OMPI_MCA_rmaps_base_oversubscribe=1 PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
CONFIG="$SHARED/fixtures/hf-parity/opt/config.json"
common=(bench offsite --config "$CONFIG" --adapter 1,1 --emulator-layers 1 --steps 2 --warmup 1 --seq-len 16 --threads 1)

"$OT" "${common[@]}" --methods ft,ot --batch 4 --ranks 2 --json "$T/team.json" > "$T/team.out" 2> "$T/team.err" ||
  { cat "$T/team.err"; fail "bench offsite --ranks 2 failed"; }
grep -q "over 2 data-parallel ranks" "$T/team.err" || fail "the header does not say the team: $(cat "$T/team.err")"
[ "$(grep -c '^| ft | ' "$T/team.out")" = 1 ] || fail "one row per method expected (rank 0's): $(cat "$T/team.out")"
python3 - "$T/team.json" <<'PY' || fail "team results"
import json, sys
j = json.load(open(sys.argv[1]))
assert [m["method"] for m in j["methods"]] == ["ft", "ot"], j
for m in j["methods"]:
    assert m["ranks"] == 2, m
    assert m["tokens_per_s"] > 0, m
PY
"$OT" "${common[@]}" --methods ft --batch 4 --json "$T/alone.json" > /dev/null 2>&1 || fail "bench offsite alone failed"
python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['methods'][0]; assert m['ranks'] == 1, m" "$T/alone.json" ||
  fail "a run without --ranks is one rank"

set +e
"$OT" "${common[@]}" --methods ft --batch 3 --ranks 2 > "$T/odd.out" 2> "$T/odd.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a batch of 3 over 2 ranks was accepted"
grep -q -- "--batch 3 does not split over --ranks 2" "$T/odd.err" || fail "unclear refusal: $(cat "$T/odd.err")"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
team=$(bash -c "source '$REPO/scripts/launch.sh' && echo \"\$OT_RANKS \${#OT_LAUNCH[@]}\"" 2>&1)
cores=$(nproc)
if [ "$cores" -ge 2 ]; then
  [ "${team%% *}" -ge 2 ] && [ "${team##* }" -gt 0 ] || fail "launch.sh on $cores cores: '$team' (expected a team)"
fi
alone=$(OT_RANKS=1 bash -c "source '$REPO/scripts/launch.sh' && echo \"\$OT_RANKS \${#OT_LAUNCH[@]}\"")
[ "$alone" = "1 0" ] || fail "OT_RANKS=1: '$alone' (expected one process)"
set +e
OT_RANKS=x bash -c "source '$REPO/scripts/launch.sh'" 2> "$T/bad.err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "OT_RANKS must be a positive integer" "$T/bad.err" || fail "OT_RANKS=x: rc $rc, $(cat "$T/bad.err")"
echo "PASS"
