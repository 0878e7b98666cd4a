#!/usr/bin/env bash
# bench/vs_transformers.sh: a full fine-tuning step (forward, backward, clipping, AdamW) of an
# OPT-125m-shaped model at batch 1 x 512, `ot` against bench/hf_opt_step.py (transformers
# 4.35's OPT training step re-stated in PyTorch: see its header), on the same PyTorch 1.13,
# OpenBLAS and thread count, alternating A B A B so that both see the same machine. Each
# side prints the fp32 GEMM rate it measured; the ratio of each round is printed and the median.
#   bash bench/vs_transformers.sh [ROUNDS] [THREADS]     (OT=build/ot; needs python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
OT=${OT:-build/ot}
ROUNDS=${1:-3}
THREADS=${2:-2}
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || { echo "vs_transformers: needs Debian's python3-torch (apt-get install python3-torch)" >&2; exit 2; }
[ -x "$OT" ] || { echo "vs_transformers: $OT not built (bash scripts/build.sh)" >&2; exit 2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STEPS=${OT_BENCH_STEPS:-5}
echo "vs_transformers: $(date -u +%Y-%m-%dT%H:%M:%SZ), OPT-125m shape, batch 1 x 512, $THREADS thread(s), $STEPS timed steps, $ROUNDS rounds"
ratios=()
for i in $(seq 1 "$ROUNDS"); do
  "$OT" bench offsite --shape opt-125m --methods ft --batch 1 --seq-len 512 --steps "$STEPS" --warmup 2 \
    --threads "$THREADS" --json "$T/ot.json" > "$T/ot.out" 2> "$T/ot.err" || { cat "$T/ot.err" >&2; exit 1; }
  "$PY" bench/hf_opt_step.py --threads "$THREADS" --steps "$STEPS" --warmup 2 > "$T/hf.json"
  "$PY" - "$T/ot.json" "$T/hf.json" "$i" <<'PY'
import json, sys
ot = json.load(open(sys.argv[1])); hf = json.load(open(sys.argv[2]))
o = ot["methods"][0]["tokens_per_s"]; h = hf["tokens_per_s"]
print(f"round {sys.argv[3]}: ot {o:.1f} tokens/s (GEMM {ot['gemm']['gflops_before']:.0f}/{ot['gemm']['gflops_after']:.0f} GFLOP/s), "
      f"reference {h:.1f} tokens/s (GEMM {hf['gemm_gflops_before']:.0f}/{hf['gemm_gflops_after']:.0f}), ratio {o / h:.2f}x")
PY
done | tee "$T/rounds.txt"
"$PY" - "$T/rounds.txt" <<'PY'
import re, statistics, sys
r = [float(m.group(1)) for m in re.finditer(r"ratio ([0-9.]+)x", open(sys.argv[1]).read())]
print(f"median ratio ot / reference: {statistics.median(r):.2f}x over {len(r)} rounds")
PY
