#!/usr/bin/env bash
# tests/layering/upward_include.sh CXX LAYER=DIRS... : the build's layering holds. Each
# LAYER=DIRS argument gives the include path (colon-separated) that the library ot_LAYER
# compiles with. A translation unit of that layer compiles when it includes headers of its own
# folder and of the layers below it, and fails with "No such file" when it includes a header
# of a layer above or beside it: an upward include cannot build.
set -euo pipefail
CXX=$1
shift
declare -A PATHS
for arg in "$@"; do PATHS[${arg%%=*}]=${arg#*=}; done
T=$(mktemp -d /tmp/ot-layering.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# compile LAYER HEADER...: -fsyntax-only of a file that includes the headers, on LAYER's path.
compile() {
  local layer=$1 flags=() h dir
  shift
  [ -n "${PATHS[$layer]:-}" ] || fail "no include path given for layer '$layer'"
  IFS=: read -ra dirs <<< "${PATHS[$layer]}"
  for dir in "${dirs[@]}"; do [ -n "$dir" ] && flags+=(-I "$dir"); done
  : > "$T/$layer.cpp"
  for h in "$@"; do echo "#include \"$h\"" >> "$T/$layer.cpp"; done
  "$CXX" -std=c++17 -fsyntax-only "${flags[@]}" "$T/$layer.cpp" > "$T/$layer.log" 2>&1
}
allowed() {
  compile "$@" || { cat "$T/$1.log"; fail "ot_$1 should compile a file including: ${*:2}"; }
  echo "ok: ot_$1 includes ${*:2}"
}
refused() {
  if compile "$1" "$2"; then fail "ot_$1 compiled a file including $2 (a layer it may not use)"; fi
  grep -q "$2: No such file or directory" "$T/$1.log" || { cat "$T/$1.log"; fail "ot_$1 including $2 failed for another reason"; }
  echo "ok: ot_$1 cannot include $2"
}

allowed tokenizer tokenizer/byte_bpe.h util/error.h
refused tokenizer data/brown.h          # data sits on tokenizer
allowed data data/brown.h tokenizer/byte_bpe.h util/error.h
refused data analysis/runs.h            # two layers up
refused data results/run_file.h         # beside: data does not use results
allowed model model/offsite_section.h util/error.h
refused model offsite/bundle_config.h   # the offsite workflow sits above the models
allowed analysis analysis/runs.h results/run_file.h
refused results analysis/runs.h
refused analysis experiment/sweep.h
echo "PASS: every layer sees its own folder and the layers below it, and nothing else"
