#!/usr/bin/env bash
# The GPU check, one command on a GPU machine (e.g. `bash scripts/gpu_check.sh` on the
# project's H200 check machine, with .gpu-deps/ from scripts/gpu_deps.sh carried along):
#   1. builds `ot` and the GPU suite against that machine's LibTorch with CUDA (PyTorch's,
#      found through its python3) and NCCL (PyTorch's nvidia-nccl wheel, or $NCCL_HOME);
#   2. runs the `gpu` CTest label: CUDA vs the Hugging Face fixtures (fp32 and bf16),
#      distillation and adapter fine-tuning in bf16 and fp16, bit-exact resume on the GPU,
#      NCCL at world size 1, allocator peaks and event timers;
#   3. runs `ot bench offsite` on the paper's efficiency shapes (OPT-1.3B 2-8-2, GPT2-XL
#      2-16-2; batch 1 x 512 tokens, bf16 mixed precision, as scripts/table6.sh) and prints
#      speedup and memory ratios beside the paper's;
#   4. writes its log and a JSON of every figure under $OUT (default ./gpu-check-out).
# Exit status: 0 when the build, the suite and both benchmarks succeeded.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
T0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
DEPS=${OT_GPU_DEPS:-$ROOT/.gpu-deps}
BUILD=${OT_GPU_BUILD:-$ROOT/build-gpu}
JOBS=${OT_JOBS:-$(nproc)}
status=0

PY=${OT_TORCH_PYTHON:-}
for cand in /opt/torch/.venv/bin/python3 python3; do
  [ -n "$PY" ] && break
  command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch' 2>/dev/null && PY=$cand
done
[ -n "$PY" ] || { echo "gpu_check: no python3 with torch (set OT_TORCH_PYTHON)"; exit 1; }
[ -d "$DEPS/root/usr" ] || { echo "gpu_check: $DEPS is missing: run scripts/gpu_deps.sh on the build machine and carry .gpu-deps"; exit 1; }
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
read -r TORCH_VERSION TORCH_CUDA <<<"$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
NCCL_HOME=${NCCL_HOME:-$("$PY" -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null)}
if [ -n "$NCCL_HOME" ] && [ ! -e "$NCCL_HOME/lib/libnccl.so" ] && ls "$NCCL_HOME"/lib/libnccl.so.* >/dev/null 2>&1; then
  # The wheel ships only libnccl.so.2: give the linker its plain name in a folder of ours.
  mkdir -p "$BUILD/nccl/lib"
  ln -sf "$(ls "$NCCL_HOME"/lib/libnccl.so.* | sed -n 1p)" "$BUILD/nccl/lib/libnccl.so"
  ln -sfn "$NCCL_HOME/include" "$BUILD/nccl/include"
  NCCL_HOME=$BUILD/nccl
fi
[ -n "$NCCL_HOME" ] && export NCCL_HOME  # CMakeLists.txt looks for nccl.h and libnccl there
CUDA_ROOT=${CUDAToolkit_ROOT:-/usr/local/cuda}
stamp "LibTorch $TORCH_VERSION (CUDA $TORCH_CUDA) at $TORCH_PREFIX; NCCL ${NCCL_HOME:-none}; CUDA toolkit $CUDA_ROOT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# The carried Debian packages: pkg-config files and CMake configs under $DEPS/root.
export PKG_CONFIG_SYSROOT_DIR=$DEPS/root
export PKG_CONFIG_LIBDIR=$DEPS/root/usr/lib/x86_64-linux-gnu/pkgconfig:$DEPS/root/usr/share/pkgconfig
export LD_LIBRARY_PATH=$DEPS/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PKGCONF=$(command -v pkg-config || true)
[ -n "$PKGCONF" ] || PKGCONF=$DEPS/root/usr/bin/pkgconf
HDF5_DIR_DEB=$DEPS/root/usr/lib/x86_64-linux-gnu/hdf5/serial

stamp "configure"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS/root/usr" -DPKG_CONFIG_EXECUTABLE="$PKGCONF" \
  -DHDF5_ROOT="$HDF5_DIR_DEB" -DHDF5_NO_FIND_PACKAGE_CONFIG_FILE=ON \
  -DCUDAToolkit_ROOT="$CUDA_ROOT" -DTORCH_CUDA_ARCH_LIST=9.0 \
  -DOT_WITH_MPI=OFF -DOT_BUILD_BENCH=OFF -DOT_BUILD_TESTS=ON \
  -DCMAKE_BUILD_RPATH="$DEPS/root/usr/lib/x86_64-linux-gnu;$HDF5_DIR_DEB/lib" || { echo "gpu_check: configure failed"; exit 1; }
stamp "build (ot, ot_gpu_tests; $JOBS jobs)"
cmake --build "$BUILD" -j "$JOBS" --target ot ot_gpu_tests || { echo "gpu_check: build failed"; exit 1; }
# HDF5's own runtime needs (libcurl and its closure) from the carried fallback, only where
# this machine lacks them.
if ldd "$BUILD/ot" | grep "not found" >/dev/null; then
  echo "gpu_check: using carried runtime libraries for: $(ldd "$BUILD/ot" | awk '/not found/ {print $1}' | tr '\n' ' ')"
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$DEPS/fallback
fi
ldd "$BUILD/ot" | grep "not found" && { echo "gpu_check: ot cannot start"; exit 1; }
"$BUILD/ot" --version

stamp "GPU suite (ctest -L gpu)"
if ! ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 600 -V > "$OUT/gpu_tests.log" 2>&1; then status=1; fi
grep -E "^\[ *(OK|FAILED|SKIPPED) *\]|tests passed|tests failed|device:" "$OUT/gpu_tests.log" | tail -40

# The paper's efficiency figure: bf16 mixed precision, batch 1, block 512, one GPU.
bench() {  # name shape adapter emulator_layers
  stamp "bench offsite $1"
  if "$BUILD/ot" bench offsite --device cuda --precision bf16 --shape "$2" --adapter "$3" --emulator-layers "$4" \
       --batch 1 --seq-len 512 --warmup 3 --steps 20 --json "$OUT/bench_$1.json" > "$OUT/bench_$1.md" 2> "$OUT/bench_$1.err"; then
    cat "$OUT/bench_$1.md"
  else
    status=1
    tail -5 "$OUT/bench_$1.err"
  fi
}
bench opt-1.3b opt-1.3b 2,2 8
bench gpt2-xl gpt2-xl 2,2 16

stamp "summary"
"$PY" - "$OUT" "$TORCH_VERSION" "$status" <<'PYEOF'
import json, os, re, sys
out, torch_version, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary = {"torch": torch_version, "status": "passed" if status == 0 else "failed", "bench": {}, "tests": {}}
log = open(os.path.join(out, "gpu_tests.log")).read() if os.path.exists(os.path.join(out, "gpu_tests.log")) else ""
for state, name in re.findall(r"^\[ *(OK|FAILED|SKIPPED) *\] ([\w/.]+)", log, re.M):
    summary["tests"][name] = state
m = re.search(r"device: (.*), peak bf16", log)
summary["device"] = m.group(1) if m else None
paper = {"opt-1.3b": {"ft": (1316, 30458), "ot_lora": (8525, 6192)}, "gpt2-xl": {"ft": (957, 39922), "ot_lora": (6257, 7155)}}
for name in ("opt-1.3b", "gpt2-xl"):
    path = os.path.join(out, "bench_%s.json" % name)
    if not os.path.exists(path):
        continue
    rows = {r["method"]: r for r in json.load(open(path))}
    entry = {"methods": rows}
    if "ft" in rows and "ot_lora" in rows:
        ft, ot = rows["ft"], rows["ot_lora"]
        entry["speedup_ot_lora"] = ot["tokens_per_s"] / ft["tokens_per_s"]
        entry["memory_reduction_ot_lora"] = ft["peak_gpu_memory_mib"] / ot["peak_gpu_memory_mib"]
        p = paper[name]
        entry["paper_speedup"] = p["ot_lora"][0] / p["ft"][0]
        entry["paper_memory_reduction"] = p["ft"][1] / p["ot_lora"][1]
        print("%s: OT+LoRA vs FT speedup %.2fx (paper %.2fx), GPU memory %.2fx less (paper %.2fx)" % (
            name, entry["speedup_ot_lora"], entry["paper_speedup"], entry["memory_reduction_ot_lora"],
            entry["paper_memory_reduction"]))
    summary["bench"][name] = entry
json.dump(summary, open(os.path.join(out, "gpu_check.json"), "w"), indent=2)
print("gpu_check: %s; %d tests (%d failed, %d skipped); figures in %s" % (
    summary["status"], len(summary["tests"]), sum(v == "FAILED" for v in summary["tests"].values()),
    sum(v == "SKIPPED" for v in summary["tests"].values()), os.path.join(out, "gpu_check.json")))
PYEOF
stamp "done (status $status)"
exit $status
