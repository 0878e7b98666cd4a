#!/usr/bin/env bash
# tests/faults/disk_full.sh OT SHARED_DIR: every writer on a full disk (a small tmpfs the test
# mounts: root only, else it skips) ends with a one-line error naming the file and exit 1,
# leaves no temporary or partial output behind, and leaves what was written before intact:
# HF checkpoint (ot convert), bundle (ot emulator), adapter (ot finetune), trainer state
# (--state), HDF5 run file (--record, ot run's results), the token cache (--cache-dir), the
# runner's caches (tokenizer, foundation model) and ot analyze's tables; then ot analyze
# still reads the results written before the disk filled up.
source "$(dirname "$0")/common.sh"

S=$T/small
mkdir -p "$S"
[ "$(id -u)" -eq 0 ] || skip "mounting a small tmpfs needs root"
mount -t tmpfs -o size=8m ot-faults "$S" 2>"$T/mount.err" || skip "cannot mount a tmpfs here: $(cat "$T/mount.err")"
CLEANUP+=("umount '$S'")

# fill FREE_KB: fills $S up to FREE_KB kilobytes of free space (0: completely full).
fill() {
  rm -f "$S/.filler"
  dd if=/dev/zero of="$S/.filler" bs=64k status=none 2>/dev/null || true
  [ "$1" -eq 0 ] || truncate -s -"$1"K "$S/.filler"
}
unfill() { rm -f "$S/.filler"; }
# snapshot: checksums of every file under $S but the filler, the runs' claims and the cache
# locks (empty lock files that stay by design, experiment/runner.h): what was there before.
snapshot() {
  (cd "$S" && find . -type f ! -name .filler ! -path '*/.claims/*' ! -name '*.lock' -print0 | sort -z | xargs -0r md5sum)
}

# expect_full NAME OUTPUT CMD...: CMD fails cleanly on the full disk; OUTPUT (a path under $S
# that CMD writes) is unchanged (or still absent), nothing else under $S changed.
expect_full() {
  local name=$1 out=$2
  shift 2
  local before after rc
  before=$(snapshot)
  local existed=0
  [ -e "$out" ] && existed=1
  set +e
  "$@" > "$T/$name.out" 2> "$T/$name.err"
  rc=$?
  set -e
  [ "$rc" -eq 1 ] || { cat "$T/$name.err"; fail "$name: exit $rc on a full disk, expected 1"; }
  local last
  last=$(tail -1 "$T/$name.err")
  echo "$last" | grep -q "$S" || { cat "$T/$name.err"; fail "$name: the error should name the file under $S: $last"; }
  echo "$last" | grep -qi "no space left on device" || { cat "$T/$name.err"; fail "$name: the error should say the disk is full: $last"; }
  # A new output must not appear (an empty folder made on the way holds nothing half-written).
  if [ "$existed" = 0 ] && [ -n "$(find "$out" -type f ! -name "*.lock" 2>/dev/null)" ]; then fail "$name: $out has files after the failed write"; fi
  after=$(snapshot)
  [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") || true; fail "$name: files under $S changed or were left behind"; }
  echo "ok: $name: $last"
}

TRAIN=(--corpus "$T/train.txt" --block-size 32 --batch-size 2 --max-steps 2 --threads 1)
"$OT" emulator --model "$T/full" --adapter 1,1 --emulator-layers 1 --out "$T/bundle" >/dev/null 2>&1 || fail "bundle"

echo "== writers on a full disk"
fill 64
expect_full convert "$S/model" "$OT" convert llama2c --checkpoint "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --out "$S/model"
expect_full emulator "$S/bundle" "$OT" emulator --model "$T/full" --adapter 1,1 --emulator-layers 1 --out "$S/bundle"
expect_full finetune "$S/adapter" "$OT" finetune --model "$T/bundle" "${TRAIN[@]}" --out "$S/adapter"
expect_full state "$S/state.pt" "$OT" finetune --model "$T/bundle" "${TRAIN[@]}" --state "$S/state.pt" --save-every 1 --out "$T/a1"
fill 0
expect_full token-cache "$S/cache" "$OT" finetune --model "$T/bundle" "${TRAIN[@]}" --cache-dir "$S/cache" --out "$T/a2"
expect_full record "$S/ft.h5" "$OT" finetune --model "$T/bundle" "${TRAIN[@]}" --record "$S/ft.h5" --out "$T/a3"
pretrain_toml "$T/pre.toml" pre "$T/results" "$S/work"
expect_full runner-tokenizer "$S/work/tokenizers" "$OT" run "$T/pre.toml"
# The foundation model cache: the tokenizer made with space left, the model entry removed.
unfill
"$OT" run "$T/pre.toml" > "$T/pre.log" 2>&1 || { cat "$T/pre.log"; fail "the pretrain run with space left"; }
rm -rf "$S"/work/models/*
fill 0
expect_full runner-model "$S/work/models" "$OT" run "$T/pre.toml"

echo "== results written before the disk filled up"
unfill
offsite_toml "$T/exp.toml" full "$S/results" "$T/work" "[sweep]" "seeds = [0, 1]"
"$OT" run "$T/exp.toml" --index 0 > "$T/r0.log" 2>&1 || { cat "$T/r0.log"; fail "run 0 with space left"; }
"$OT" analyze "$S/results" --out "$S/analysis" --no-figures > /dev/null 2>"$T/an0.err" || { cat "$T/an0.err"; fail "analyze with space left"; }
fill 0
second=$("$OT" sweep plan "$T/exp.toml" | sed -n 's/^| 1 | \([0-9a-f]*\) .*/\1/p')
expect_full results "$S/results/full/$second.h5" "$OT" run "$T/exp.toml" --index 1
expect_full analyze "$S/analysis/tables.md" "$OT" analyze "$S/results" --out "$S/analysis" --no-figures
"$OT" analyze "$S/results" --out "$T/analysis" --no-figures > "$T/an.out" 2> "$T/an.err" || { cat "$T/an.err"; fail "ot analyze over the earlier results failed"; }
grep -q "full" "$T/analysis/tables.md" || fail "the analysis should hold the earlier run"
[ -z "$(leftovers "$S")" ] || fail "leftovers on the full disk: $(leftovers "$S")"
echo "PASS: every writer failed cleanly on a full disk; earlier results intact and analysed"
