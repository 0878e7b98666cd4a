#!/usr/bin/env bash
# tests/faults/kill9.sh OT SHARED_DIR [TRIALS]: each writer killed with SIGKILL at random points
# (TRIALS per writer, 10 by default; delays drawn with a fixed seed, up to 1.2 times the
# writer's own uninterrupted time): afterwards its output is either absent, the earlier one or the complete
# new one (byte for byte the output of an uninterrupted run), never partial; then the same
# command completes with exactly the uninterrupted output. Writers: HF checkpoint (ot
# convert), bundle (ot emulator), adapter with its trainer state and HDF5 record (ot finetune
# --state --record), the plugged-in model (ot plugin), and ot run (tokenizer, foundation
# model, token and score caches, stage directories, trainer states, the result file).
source "$(dirname "$0")/common.sh"
TRIALS=${3:-10}
RANDOM=20261204   # fixed seed: the same delays every time

ms() { date +%s%3N; }
# same_dir A B: both directories hold the same files with the same bytes (checksum lists aside).
same_dir() { diff <(cd "$1" && find . -type f ! -name .checksums | sort | xargs md5sum) \
                  <(cd "$2" && find . -type f ! -name .checksums | sort | xargs md5sum) >/dev/null; }

# trials NAME OUT REF CMD...: runs CMD uninterrupted into REF first (timing it), then TRIALS
# times into OUT, killed after a random delay; OUT must then be absent or identical to REF.
# Last, CMD runs uninterrupted into OUT and must give REF.
trials() {
  local name=$1 out=$2 ref=$3
  shift 3
  local t0 t1 dur i delay pid cmd=("$@")
  "${cmd[@]//@OUT@/$ref}" > "$T/$name.ref.log" 2>&1 || { cat "$T/$name.ref.log"; fail "$name: the uninterrupted run failed"; }
  t0=$(ms)   # timed the second time, with warm caches, like the trials
  "${cmd[@]//@OUT@/$ref}" > "$T/$name.ref.log" 2>&1 || { cat "$T/$name.ref.log"; fail "$name: the uninterrupted run failed"; }
  t1=$(ms)
  dur=$((t1 - t0))
  local whole=0 absent=0
  for i in $(seq 1 "$TRIALS"); do
    delay=$((RANDOM % (dur * 6 / 5)))   # a few land after the end: the old output must then stay
    "${cmd[@]//@OUT@/$out}" > "$T/$name.$i.log" 2>&1 & pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ ! -e "$out" ]; then
      # Absent is right only before any attempt finished: an earlier output must stay.
      [ "$whole" -eq 0 ] || fail "$name: trial $i (killed after $delay ms): the earlier complete $out vanished"
      absent=$((absent + 1))
    elif same_dir "$out" "$ref"; then
      whole=$((whole + 1))
    else
      fail "$name: trial $i (killed after $delay ms): $out is partial"
    fi
  done
  "${cmd[@]//@OUT@/$out}" > "$T/$name.last.log" 2>&1 || { cat "$T/$name.last.log"; fail "$name: the run after the kills failed"; }
  same_dir "$out" "$ref" || fail "$name: the run after the kills differs from the uninterrupted one"
  # The killed attempts' temporaries beside the output are gone after the next run.
  local base
  base=$(basename "$out")
  left=$(find "$(dirname "$out")" -maxdepth 1 -name ".$base*.tmp.*")
  [ -z "$left" ] || fail "$name: temporaries of killed writers left: $left"
  echo "ok: $name: $TRIALS kills within ${dur} ms: $absent absent, $whole complete, never partial; the next run completed"
}

trials convert "$T/k-model" "$T/r-model" \
  "$OT" convert llama2c --checkpoint "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --force --out @OUT@
trials emulator "$T/k-bundle" "$T/r-bundle" \
  "$OT" emulator --model "$T/full" --adapter 1,1 --emulator-layers 1 --out @OUT@
# The adapter: its trainer state and record live beside it, named after it, so each trial
# resumes the killed one (the state is written every step) and must still end bit for bit
# where an uninterrupted fine-tuning ends.
trials finetune "$T/k-adapter" "$T/r-adapter" \
  "$OT" finetune --model "$T/r-bundle" --corpus "$T/train.txt" --block-size 32 --batch-size 2 --max-steps 6 \
  --threads 1 --save-every 1 --state @OUT@.state --record @OUT@.h5 --out @OUT@
for f in "$T"/k-adapter.h5 "$T"/r-adapter.h5; do
  [ "$(status_of "$f")" = completed ] || fail "$f: status $(status_of "$f"), expected completed"
done
[ ! -e "$T/k-adapter.state" ] || fail "a finished fine-tuning removes its state"
trials plugin "$T/k-plugged" "$T/r-plugged" "$OT" plugin --model "$T/full" --bundle "$T/r-bundle" --adapter "$T/r-adapter" \
  --out @OUT@

echo "== ot run: killed at random points, then continued"
own_model_toml "$T/ref.toml" k "$T/ref-results" "$T/ref-work"
own_model_toml "$T/kill.toml" k "$T/k-results" "$T/k-work"
values() { h5dump -d /eval/value "$1" | sed -n 's/^ *([0-9]*): *//p'; }
t0=$(ms)
"$OT" run --sweep "$T/ref.toml" > "$T/run.ref.log" 2>&1 || { cat "$T/run.ref.log"; fail "ot run: the uninterrupted run failed"; }
dur=$(($(ms) - t0))
ref=$(values "$T"/ref-results/k/*.h5)
fresh=0
for i in $(seq 1 "$TRIALS"); do
  delay=$((RANDOM % dur))
  "$OT" run --sweep "$T/kill.toml" > "$T/run.$i.log" 2>&1 & pid=$!
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The result file is readable whenever it exists; a completed one holds the reference values.
  for f in "$T"/k-results/k/*.h5; do
    [ -e "$f" ] || continue
    s=$(status_of "$f")
    [ "$s" = running ] || [ "$s" = completed ] || fail "ot run: trial $i (after $delay ms): $f unreadable or $s"
    if [ "$s" = completed ]; then
      [ "$(values "$f")" = "$ref" ] || { diff <(echo "$ref") <(values "$f"); grep -h "^ot: run\|earlier attempt\|resumed" "$T"/run.*.log;
                                           fail "ot run: trial $i: completed with other values"; }
      rm -rf "$T/k-results" "$T/k-work"   # start the next trial from nothing
      fresh=$((fresh + 1))
    fi
  done
  # Stage outputs and cache entries appear whole: no partial model or tokenizer directory.
  for d in "$T"/k-work/models/* "$T"/k-work/tokenizers/*; do
    [ -d "$d" ] || continue
    case "$d" in *.scores | *.init | *.tmp | *.tmp-*) continue ;; esac  # scores; a killed attempt's staging
    [ -f "$d/.checksums" ] || fail "ot run: trial $i: cache entry $d has no checksum list (partial?)"
  done
done
"$OT" run --sweep "$T/kill.toml" > "$T/run.last.log" 2>&1 || { cat "$T/run.last.log"; fail "ot run: the run after the kills failed"; }
grep -q "damaged" "$T/run.last.log" && { cat "$T/run.last.log"; fail "ot run: a kill left a damaged cache entry"; }
[ "$(values "$T"/k-results/k/*.h5)" = "$ref" ] || fail "ot run: the continued run's values differ from the uninterrupted run's"
[ -z "$(leftovers "$T/k-results")" ] || fail "ot run: leftovers in the results: $(leftovers "$T/k-results")"
# Staging of killed attempts is gone once the run completed (token cache temporaries aside:
# every rank of a team writes that file, so no writer may remove another's temporary).
left=$(leftovers "$T/k-work" | grep -v '/token-cache/' || true)
[ -z "$left" ] || fail "ot run: leftovers in the work directory: $left"
echo "ok: ot run: $TRIALS kills within $dur ms ($fresh completed before their kill), continued to the uninterrupted values"
echo "PASS: no writer left a partial output after SIGKILL; every next run completed with the uninterrupted result"
