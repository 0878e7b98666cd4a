#!/usr/bin/env bash
# bench/vs_transformers.sh: a full fine-tuning step (forward, backward, clipping, AdamW) of an
# OPT-125m-shaped model at batch 1 x 512, `ot` against Hugging Face transformers' OPTForCausalLM
# (when python3 can import transformers: put it on PYTHONPATH) and against bench/hf_opt_step.py's
# re-statement of its step in plain PyTorch, on the same PyTorch 1.13, OpenBLAS and thread
# count, in turns (ot, transformers, re-statement, ot, ...) so that all see the same machine.
# Each side prints the fp32 GEMM rate it measured; each round's ratios are printed and the medians.
#   bash bench/vs_transformers.sh [ROUNDS] [THREADS]     (OT=build/ot; needs python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
OT=${OT:-build/ot}
ROUNDS=${1:-3}
THREADS=${2:-2}
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || { echo "vs_transformers: needs Debian's python3-torch (apt-get install python3-torch)" >&2; exit 2; }
[ -x "$OT" ] || { echo "vs_transformers: $OT not built (bash scripts/build.sh)" >&2; exit 2; }
# Both sides use the same OpenBLAS. Its pthreads build slows PyTorch's side (its pool and the
# OpenMP threads stall each other) while `ot` works around it, so the ratio would flatter `ot`.
BLAS=$("$PY" -c "import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_config.restype = ctypes.c_char_p
print(l.openblas_get_parallel(), l.openblas_get_config().decode())" 2>/dev/null || echo "? (no libopenblas.so.0)")
if [ "${BLAS%% *}" = 1 ] && [ "$THREADS" -gt 1 ]; then
  echo "vs_transformers: libopenblas.so.0 is OpenBLAS's pthreads build (${BLAS#* }); compare on its OpenMP build:" \
    "apt-get install libopenblas0-openmp && update-alternatives --set libopenblas.so.0-x86_64-linux-gnu" \
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0" >&2
  exit 2
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STEPS=${OT_BENCH_STEPS:-5}
echo "vs_transformers: $(date -u +%Y-%m-%dT%H:%M:%SZ), OPT-125m shape, batch 1 x 512, $THREADS thread(s), $STEPS timed steps, $ROUNDS rounds"
echo "vs_transformers: BLAS ${BLAS#* }"
IMPLS=(restated)
if "$PY" -c "import transformers" 2>/dev/null; then
  IMPLS=(transformers restated)
  echo "vs_transformers: transformers $("$PY" -c "import transformers; print(transformers.__version__, 'from', transformers.__file__)")"
else
  echo "vs_transformers: python3 cannot import transformers: comparing with the re-statement only"
fi
for i in $(seq 1 "$ROUNDS"); do
  "$OT" bench offsite --shape opt-125m --methods ft --batch 1 --seq-len 512 --steps "$STEPS" --warmup 2 \
    --threads "$THREADS" --json "$T/ot.json" > "$T/ot.out" 2> "$T/ot.err" || { cat "$T/ot.err" >&2; exit 1; }
  for impl in "${IMPLS[@]}"; do
    "$PY" bench/hf_opt_step.py --impl "$impl" --threads "$THREADS" --steps "$STEPS" --warmup 2 > "$T/$impl.json"
  done
  "$PY" - "$T" "$i" "${IMPLS[@]}" <<'PY'
import json, sys
folder, round_no, impls = sys.argv[1], sys.argv[2], sys.argv[3:]
ot = json.load(open(f"{folder}/ot.json"))
o = ot["methods"][0]["tokens_per_s"]
parts = [f"round {round_no}: ot {o:.1f} tokens/s (GEMM {ot['gemm']['gflops_before']:.0f}/{ot['gemm']['gflops_after']:.0f} GFLOP/s)"]
for impl in impls:
    r = json.load(open(f"{folder}/{impl}.json"))
    h = r["tokens_per_s"]
    parts.append(f"{impl} {h:.1f} tokens/s (GEMM {r['gemm_gflops_before']:.0f}/{r['gemm_gflops_after']:.0f}), "
                 f"ratio vs {impl} {o / h:.2f}x")
print(", ".join(parts))
PY
done | tee "$T/rounds.txt"
"$PY" - "$T/rounds.txt" "${IMPLS[@]}" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
for impl in sys.argv[2:]:
    r = [float(m.group(1)) for m in re.finditer(rf"ratio vs {impl} ([0-9.]+)x", text)]
    print(f"median ratio ot / {impl}: {statistics.median(r):.2f}x over {len(r)} rounds")
PY
