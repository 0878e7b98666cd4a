#!/usr/bin/env bash
# Builds libFuzzer targets (tests/fuzz/fuzz_<name>.cpp, clang with ASan/UBSan) into ./build-fuzz
# and runs each for the given number of seconds from its seeds (tests/fuzz/seeds/<name>/) and
# its corpus (build-fuzz/corpus-fuzz_<name>/, kept between runs, so it grows campaign after
# campaign). A crash, a sanitizer report, an input slower than OT_FUZZ_TIMEOUT seconds (10)
# or an unexpected exception fails the run; libFuzzer leaves the input as
# build-fuzz/crash-* / timeout-* and the log in build-fuzz/fuzz_<name>.log.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [NAME...]
#   bash scripts/fuzz.sh                  # every target, 30 s each (CI: scripts/test.sh)
#   bash scripts/fuzz.sh 600 toml adapter # a longer campaign on fuzz_toml and fuzz_adapter
# NAME is a target with or without its fuzz_ prefix: safetensors tokenizer toml tasks
# run_file bundle adapter llama2c brown bpe_trainer image image_datasets (ls tests/fuzz/*.cpp).
# Inputs are at most 4096 bytes, or the size of the target's largest seed if that is more.
# tests/fuzz/fuzz_<name>.options, if present, holds extra libFuzzer flags for that target
# (one line, with a comment above saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
shift || true
B=${OT_FUZZ_BUILD_DIR:-build-fuzz}
TIMEOUT=${OT_FUZZ_TIMEOUT:-10}
if [ $# -gt 0 ]; then
  names=()
  for n in "$@"; do
    n=fuzz_${n#fuzz_}
    [ -f "tests/fuzz/$n.cpp" ] || { echo "fuzz: no target $n (tests/fuzz/$n.cpp)" >&2; exit 2; }
    names+=("$n")
  done
else
  names=()
  for src in tests/fuzz/*.cpp; do names+=("$(basename "$src" .cpp)"); done
fi
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_COMPILER_LAUNCHER= -DOT_BUILD_FUZZ=ON -DOT_BUILD_TESTS=OFF -DOT_BUILD_BENCH=OFF -DOT_USE_PCH=OFF >/dev/null
cmake --build "$B" --target "${names[@]}" -j "${OT_JOBS:-$(nproc)}" >/dev/null
for name in "${names[@]}"; do
  corpus="$B/corpus-$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/${name#fuzz_}"
  max_len=4096
  if [ -d "$seeds" ]; then
    largest=$(find "$seeds" -type f -printf '%s\n' | sort -n | tail -n 1)
    [ -n "$largest" ] && [ "$largest" -gt "$max_len" ] && max_len=$largest
  else
    seeds=""
  fi
  options=""
  [ -f "tests/fuzz/$name.options" ] && options=$(grep -v '^#' "tests/fuzz/$name.options" | tr '\n' ' ')
  echo "fuzz: $name for ${SECONDS_EACH}s"
  OT_SHARED_DIR=${OT_SHARED_DIR:-$PWD/../shared} \
    "$B/tests/$name" -max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout="$TIMEOUT" \
    -print_final_stats=1 -artifact_prefix="$B/" $options "$corpus" $seeds \
    2> "$B/$name.log" || { tail -n 60 "$B/$name.log"; echo "fuzz: $name FAILED" >&2; exit 1; }
  grep -E "stat::number_of_executed_units" "$B/$name.log" | sed "s/^/fuzz: $name /"
done
