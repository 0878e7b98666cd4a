#!/usr/bin/env bash
# tests/faults/concurrent_sweep.sh OT SHARED_DIR: two `ot sweep` processes started together on
# one sweep file and one results directory complete every run exactly once (the runs' claims,
# experiment/runner.h); two Slurm array tasks of the same index (`ot run --sweep S --index I`,
# e.g. a requeued task beside its first incarnation) run it once; a claim held by a process
# killed with SIGKILL does not block the next sweep.
source "$(dirname "$0")/common.sh"

offsite_toml "$T/sweep.toml" both "$T/results" "$T/work" "[sweep]" "seeds = [0, 1, 2, 3, 4, 5]"
N=6

echo "== two sweeps at once"
"$OT" sweep "$T/sweep.toml" > "$T/a.log" 2>&1 & a=$!
"$OT" sweep "$T/sweep.toml" > "$T/b.log" 2>&1 & b=$!
CLEANUP+=("kill -9 $a $b 2>/dev/null")
wait $a || { cat "$T/a.log"; fail "sweep A exited non-zero"; }
wait $b || { cat "$T/b.log"; fail "sweep B exited non-zero"; }
now() { sed -n 's/.* run(s): \([0-9]*\) completed now.*/\1/p' "$1"; }
na=$(now "$T/a.log")
nb=$(now "$T/b.log")
echo "sweep A completed $na run(s), sweep B $nb; $(cat "$T/a.log" "$T/b.log" | grep -c 'left to it' || true) claim(s) found held"
[ $((na + nb)) -eq $N ] || { cat "$T/a.log" "$T/b.log"; fail "the two sweeps completed $na + $nb runs, expected $N in all (each once)"; }
n=0
for f in "$T"/results/both/*.h5; do
  [ "$(status_of "$f")" = completed ] || fail "$f: status $(status_of "$f"), expected completed"
  [ "$(h5attr "$f" attempts)" = 1 ] || fail "$f: $(h5attr "$f" attempts) attempts, expected 1 (started twice?)"
  n=$((n + 1))
done
[ "$n" -eq $N ] || fail "$n result files, expected $N"
grep -q "^ot: run .* failed:" "$T/a.log" "$T/b.log" && { cat "$T/a.log" "$T/b.log"; fail "no run may fail"; }
[ -z "$(leftovers "$T/results")$(leftovers "$T/work")" ] || fail "leftovers: $(leftovers "$T/results") $(leftovers "$T/work")"

echo "== two array tasks of the same index"
offsite_toml "$T/array.toml" array "$T/results" "$T/work" "[sweep]" "seeds = [7, 8]"
"$OT" run --sweep "$T/array.toml" --index 1 > "$T/c.log" 2>&1 & c=$!
"$OT" run --sweep "$T/array.toml" --index 1 > "$T/d.log" 2>&1 & d=$!
CLEANUP+=("kill -9 $c $d 2>/dev/null")
wait $c || { cat "$T/c.log"; fail "array task C exited non-zero"; }
wait $d || { cat "$T/d.log"; fail "array task D exited non-zero"; }
nc=$(now "$T/c.log")
nd=$(now "$T/d.log")
[ $((nc + nd)) -eq 1 ] || { cat "$T/c.log" "$T/d.log"; fail "index 1 completed $nc + $nd times, expected once"; }
f=$(ls "$T"/results/array/*.h5)
[ "$(echo "$f" | wc -l)" -eq 1 ] && [ "$(status_of "$f")" = completed ] || fail "expected one completed run file, got: $f"

echo "== a claim of a killed process is not stale"
offsite_toml "$T/killed.toml" killed "$T/results" "$T/work" "[sweep]" "seeds = [0, 1]"
"$OT" sweep "$T/killed.toml" > "$T/e.log" 2>&1 & e=$!
CLEANUP+=("kill -9 $e 2>/dev/null")
for _ in $(seq 1 400); do
  ls "$T"/results/killed/*.h5 >/dev/null 2>&1 && break
  sleep 0.05
done
kill -9 $e 2>/dev/null || true
wait $e 2>/dev/null || true
ls "$T"/results/.claims/killed/*.claim >/dev/null 2>&1 || fail "the killed sweep should have left its claim file"
timeout 300 "$OT" sweep "$T/killed.toml" > "$T/f.log" 2>&1 || { cat "$T/f.log"; fail "the sweep after the kill failed"; }
for f in "$T"/results/killed/*.h5; do [ "$(status_of "$f")" = completed ] || fail "$f not completed after the kill"; done
[ "$(ls "$T"/results/killed/*.h5 | wc -l)" -eq 2 ] || fail "expected 2 run files"
echo "PASS: $N runs completed exactly once by two concurrent sweeps; one array index run once by two tasks; a killed process's claim released"
