#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/*.cpp, clang with ASan/UBSan) into ./build-fuzz
# and runs each for the given number of seconds (default 30) from its seed corpus.
# A crash, a sanitizer report or an unexpected exception fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
B=${OT_FUZZ_BUILD_DIR:-build-fuzz}
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_COMPILER_LAUNCHER= -DOT_BUILD_FUZZ=ON -DOT_BUILD_TESTS=OFF -DOT_BUILD_BENCH=OFF -DOT_USE_PCH=OFF >/dev/null
for src in tests/fuzz/*.cpp; do
  name=$(basename "$src" .cpp)
  cmake --build "$B" --target "$name" -j "$(nproc)" >/dev/null
  corpus="$B/corpus-$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/${name#fuzz_}"
  [ -d "$seeds" ] || seeds=""
  echo "fuzz: $name for ${SECONDS_EACH}s"
  OT_SHARED_DIR=${OT_SHARED_DIR:-$PWD/../shared} \
    "$B/tests/$name" -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 "$corpus" $seeds \
    2> "$B/$name.log" || { tail -n 60 "$B/$name.log"; echo "fuzz: $name FAILED" >&2; exit 1; }
  grep -E "stat::number_of_executed_units" "$B/$name.log" | sed "s/^/fuzz: $name /"
done
