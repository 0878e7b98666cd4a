#!/usr/bin/env bash
# Prepares, on this (Debian 12) machine, what the GPU check machine lacks to build offsite:
# the Debian 12 packages of the headers and libraries offsite builds against (besides
# LibTorch, CUDA and NCCL, which that machine has), unpacked with `dpkg -x` into .gpu-deps/
# (git-ignored), plus the runtime libraries HDF5 pulls in (libcurl's closure) in a separate
# fallback folder that scripts/gpu_check.sh uses only for what the machine itself lacks.
# Idempotent; carry .gpu-deps with the working tree (under 40 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OT_GPU_DEPS:-.gpu-deps}
STAMP=$OUT/.complete
PACKAGES=(
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libtomlplusplus3
  libpcre2-dev libpcre2-8-0 libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0
  libgtest-dev libgmock-dev pkgconf pkgconf-bin libpkgconf3
  libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev zlib1g
)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PACKAGES[*]}" ]; then
  echo "gpu_deps: $OUT is complete ($(du -sh "$OUT" | cut -f1))"
  exit 0
fi
command -v apt-get >/dev/null || { echo "gpu_deps: needs Debian's apt-get" >&2; exit 1; }
for lib in /usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103; do
  [ -e "$lib" ] || { echo "gpu_deps: run scripts/setup.sh first ($lib is missing)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# HDF5's runtime closure (libcurl and what it needs), minus the C library itself.
runtime=()
while read -r so; do
  case "$so" in */libc.so.*|*/libm.so.*|*/libresolv.so.*|*/ld-linux*|*/libstdc++*|*/libgcc_s*|*/libpthread*|*/libdl.so*) continue ;; esac
  real=$(readlink -f "$so")
  pkg=
  for path in "$so" "$real" "${real#/usr}" "${so#/usr}"; do  # dpkg knows one spelling (merged /usr)
    pkg=$(dpkg -S "$path" 2>/dev/null | sed -n 1p | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  [ -n "$pkg" ] || { echo "gpu_deps: no package owns $so" >&2; exit 1; }
  runtime+=("$pkg")
done < <(ldd /usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103 | awk '$3 ~ /^\// {print $3}')
mapfile -t runtime < <(printf '%s\n' "${runtime[@]}" | sort -u | grep -v -x -F -f <(printf '%s\n' "${PACKAGES[@]}"))
(cd "$tmp" && apt-get download "${PACKAGES[@]}" "${runtime[@]}" >/dev/null 2>"$tmp/apt.err") ||
  { cat "$tmp/apt.err" >&2; exit 1; }
rm -rf "$OUT.new"
mkdir -p "$OUT.new/root" "$OUT.new/fallback-root"
for p in "${PACKAGES[@]}"; do dpkg -x "$tmp/${p}"_*.deb "$OUT.new/root"; done
for p in "${runtime[@]}"; do dpkg -x "$tmp/${p}"_*.deb "$OUT.new/fallback-root"; done
# Absolute links (zlib1g-dev's libz.so -> /lib/...) would point outside the tree on the GPU
# machine: point them at the unpacked file instead.
find "$OUT.new/root" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  target="$OUT.new/root$(readlink "$link")"
  if [ -e "$target" ]; then ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$target")" "$link"; fi
done
# A compiler looks in the multiarch include folder only under /usr/include: libjpeg's
# jconfig.h (which jpeglib.h includes) is linked beside jpeglib.h.
for h in "$OUT.new"/root/usr/include/x86_64-linux-gnu/*.h; do [ -e "$h" ] || continue; ln -sfn "x86_64-linux-gnu/$(basename "$h")" "$OUT.new/root/usr/include/"; done
# What the build never reads: documentation, and the static libraries other than GoogleTest's.
rm -rf "$OUT.new"/root/usr/share/{doc,man,lintian,bug} "$OUT.new"/fallback-root/usr/share "$OUT.new"/fallback-root/etc
find "$OUT.new/root" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
mkdir -p "$OUT.new/fallback"
find "$OUT.new/fallback-root" \( -type f -o -type l \) -name '*.so*' -exec cp -a {} "$OUT.new/fallback/" \;
rm -rf "$OUT.new/fallback-root"
printf '%s\n' "${runtime[@]}" > "$OUT.new/fallback/PACKAGES"
echo "${PACKAGES[*]}" > "$OUT.new/.complete"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
echo "gpu_deps: $OUT ready: ${#PACKAGES[@]} build packages, ${#runtime[@]} runtime packages for HDF5 ($(du -sh "$OUT" | cut -f1))"
