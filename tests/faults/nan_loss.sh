#!/usr/bin/env bash
# tests/faults/nan_loss.sh OT SHARED_DIR: a training loss that turns NaN or infinite (an absurd
# learning rate) ends the run with the stage and the step named, the trainer state of the last
# good step saved, and the run recorded as failed in its HDF5 file (status, error); the same
# run with a sane learning rate then starts over and completes.
source "$(dirname "$0")/common.sh"

offsite_toml "$T/exp.toml" diverge "$T/results" "$T/work"
set +e
"$OT" run "$T/exp.toml" --set finetune.lr=1e30 > "$T/bad.log" 2>&1
rc=$?
set -e
cat "$T/bad.log" | tail -3
[ "$rc" -ne 0 ] || fail "a diverged run must exit non-zero"
[ "$rc" -lt 128 ] || fail "ot crashed (exit $rc)"
line=$(grep -o 'finetune: loss became [^ ]* at step [0-9]*[^;]*; the trainer state before that step is saved in [^ )]*' "$T/bad.log" | sed -n 1p)
[ -n "$line" ] || { cat "$T/bad.log"; fail "the failure should name the stage (finetune), the step and the saved state"; }
state=${line##* saved in }
[ -f "$state" ] || fail "the trainer state $state was not saved"
f=$(ls "$T"/results/diverge/*.h5)
[ "$(status_of "$f")" = failed ] || fail "$f: status $(status_of "$f"), expected failed"
h5attr "$f" error | grep -q "finetune: loss became .* at step" || fail "$f: the error attribute should say why: $(h5attr "$f" error)"
[ -z "$(leftovers "$T/results")$(leftovers "$T/work")" ] || fail "leftovers: $(leftovers "$T/results") $(leftovers "$T/work")"

# The same experiment with a sane learning rate (another run id, so another file) completes.
"$OT" run "$T/exp.toml" --set finetune.lr=1e-3 > "$T/good.log" 2>&1 || { cat "$T/good.log"; fail "a sane run after the diverged one failed"; }
states=$(for g in "$T"/results/diverge/*.h5; do status_of "$g"; done | sort | tr '\n' ' ')
[ "$states" = "completed failed " ] || fail "expected one completed and one failed run file, got: $states"
[ "$(status_of "$f")" = failed ] || fail "$f: the diverged run's record must stay failed"
echo "PASS: a NaN/Inf loss ends the run naming stage and step, keeps the trainer state, records the run as failed"
