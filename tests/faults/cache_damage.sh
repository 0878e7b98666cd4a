#!/usr/bin/env bash
# tests/faults/cache_damage.sh OT SHARED_DIR: each of the runner's caches, damaged by one
# overwritten byte (the tokenizer cache tokenizers/<id>/, the foundation model cache
# models/<id>/, the token cache token-cache/*.tokens, the score cache models/<id>.scores/*.json
# with a value changed but still valid JSON), is detected on load by its checksum, said in
# one line naming the entry, and rebuilt; the run then completes with the same results.
source "$(dirname "$0")/common.sh"

pretrain_toml "$T/exp.toml" caches "$T/results" "$T/work"
W=$T/work

# damage FILE OFFSET: overwrites the byte at OFFSET with another value.
damage() {
  local file=$1 off=$2 old new
  old=$(od -An -tx1 -j "$off" -N1 "$file" | tr -d ' ')
  [ -n "$old" ] || fail "damage: $file has no byte $off"
  new=5a
  [ "$old" = 5a ] && new=59
  printf "\\x$new" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}
# values FILE: the run's evaluation values, one per line.
values() { h5dump -d /eval/value "$1" | sed -n 's/^ *([0-9]*): *//p'; }

run_once() {  # run_once LOG: the run again (ot run reruns a completed run), must complete
  "$OT" run "$T/exp.toml" > "$1" 2>&1 || { cat "$1"; fail "the run failed after the damage ($1)"; }
}

run_once "$T/first.log"
grep -q "model: pretrained" "$T/first.log" || { cat "$T/first.log"; fail "the first run should pretrain"; }
result=$(ls "$T"/results/caches/*.h5)
ref=$(values "$result")
[ -n "$ref" ] || fail "no evaluation values in $result"

check() {  # check LOG PATTERN WHAT: the damage was said in one line, the run completed, same values
  grep -q "$2" "$1" || { cat "$1"; fail "$3: expected a line matching '$2'"; }
  [ "$(grep -c "$2" "$1")" -eq 1 ] || { cat "$1"; fail "$3: said more than once"; }
  [ "$(status_of "$result")" = completed ] || fail "$3: the run did not complete"
  [ "$(values "$result")" = "$ref" ] || fail "$3: results differ after the rebuild"
  echo "ok: $3: $(grep "$2" "$1")"
}

echo "== tokenizer cache"
tok=$(ls -d "$W"/tokenizers/*/ | sed -n 1p)
damage "$tok/merges.txt" 40
run_once "$T/tok.log"
check "$T/tok.log" "^tokenizer cache .*: damaged (merges.txt: checksum does not match); training it again$" "tokenizer cache"
grep -q "byte-level BPE on data.owner" "$T/tok.log" || fail "the tokenizer should be trained again"

echo "== foundation model cache"
model=$(ls -d "$W"/models/*/ | grep -v '\.scores/$' | sed -n 1p)
size=$(stat -c %s "$model/model.safetensors")
damage "$model/model.safetensors" $((size - 7))
run_once "$T/model.log"
check "$T/model.log" "^model cache .*: damaged (model.safetensors: checksum does not match); pretraining it again$" "model cache"
grep -q "model: pretrained" "$T/model.log" || fail "the model should be pretrained again"

echo "== token cache"
tokens=$(ls "$W"/token-cache/*.tokens | sed -n 1p)
size=$(stat -c %s "$tokens")
damage "$tokens" $((size - 3))
# Only pretraining reads the token file: the model entry is removed (a plain miss) to get there.
rm -rf "$model" "${model%/}.scores"
run_once "$T/tokens.log"
check "$T/tokens.log" "^token cache $tokens: damaged (checksum of its ids does not match); rebuilt$" "token cache"
# It is whole again: the next pretraining uses it without a word.
rm -rf "$model" "${model%/}.scores"
run_once "$T/tokens2.log"
grep -q "model: pretrained" "$T/tokens2.log" || fail "the model should be pretrained again"
if grep -q "^token cache" "$T/tokens2.log"; then fail "the rebuilt token cache should be used as it is"; fi

echo "== score cache"
scores=$(ls "$W"/models/*.scores/*.json | sed -n 1p)
grep -q '"n": [0-9]' "$scores" || fail "$scores: no count to change"
sed -i 's/"n": \([0-9]\)/"n": 1\1/' "$scores"
run_once "$T/scores.log"
check "$T/scores.log" "^score cache $scores: damaged (checksum does not match); evaluating again$" "score cache"

[ -z "$(leftovers "$W")" ] || fail "leftovers: $(leftovers "$W")"
echo "PASS: damaged tokenizer, model, token and score cache entries detected, said and rebuilt"
