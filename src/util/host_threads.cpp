// util/host_threads.cpp: see host_threads.h. OpenBLAS is looked up at run time (dlsym), so the
// build needs no OpenBLAS headers and a LibTorch on another BLAS leaves this a no-op.
#include "util/host_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "util/error.h"

namespace ot {

namespace {

template <typename Fn>
Fn openblas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

bool env_mentions(const char* var, const char* text) {
  const char* v = std::getenv(var);
  return v != nullptr && std::strstr(v, text) != nullptr;
}

}  // namespace

BlasThreading blas_threading() {
  BlasThreading b;
  auto get_parallel = openblas_symbol<int (*)()>("openblas_get_parallel");
  if (get_parallel == nullptr) return b;
  b.openblas = true;
  b.parallel = get_parallel();
  if (auto get_config = openblas_symbol<char* (*)()>("openblas_get_config")) b.config = get_config();
  return b;
}

std::string match_blas_threads(int n) {
  if (n > 0) at::set_num_threads(n);
  const BlasThreading b = blas_threading();
  if (!b.openblas || b.parallel != 1) return "";
  auto set_blas = openblas_symbol<void (*)(int)>("openblas_set_num_threads");
  if (set_blas == nullptr) return "";
  // The count asked for now, else the one an earlier call split (LibTorch's is then 1).
  static int split = 0;
  const int threads = n > 0 ? n : (split > 0 ? split : at::get_num_threads());
  set_blas(threads);
  split = 0;
  if (threads <= 1) return "";
  // Two pools on the same cores stall each other: the matrix products keep the threads and
  // LibTorch's own operations run on one.
  at::set_num_threads(1);
  split = threads;
  return "OpenBLAS is its pthreads build (" + b.config + "): its pool runs the matrix products on " +
         std::to_string(threads) +
         " threads and LibTorch's other operations run on one, since the two pools would compete for the "
         "cores; the OpenMP build is faster (Debian: apt-get install libopenblas0-openmp && update-alternatives "
         "--set libopenblas.so.0-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0)";
}

int blas_threads() {
  const BlasThreading b = blas_threading();
  if (b.openblas && b.parallel == 1) {
    if (auto get = openblas_symbol<int (*)()>("openblas_get_num_threads")) return get();
  }
  return at::get_num_threads();
}

void set_host_threads(int n) {
  static bool warned = false;
  const std::string warning = match_blas_threads(n);
  if (!warning.empty() && !warned) {
    std::cerr << "ot: warning: " << warning << "\n";
    warned = true;
  }
}

bool keep_freed_host_memory() {
  const char* policy = std::getenv("OT_HOST_MEMORY");
  if (policy != nullptr) {
    if (std::strcmp(policy, "release") == 0) return false;
    OT_REQUIRE(std::strcmp(policy, "keep") == 0, "environment variable OT_HOST_MEMORY=", policy,
               ": expected keep (the default: freed tensors stay in the process for reuse) or release (glibc's "
               "defaults)");
  }
  if (env_mentions("GLIBC_TUNABLES", "malloc.mmap_threshold") ||
      env_mentions("GLIBC_TUNABLES", "malloc.trim_threshold"))
    return false;  // the user's own settings stand
  // Blocks up to INT_MAX bytes (2 GiB) from the heap; freed memory at its top is kept up to as much.
  return mallopt(M_MMAP_THRESHOLD, INT_MAX) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
}

}  // namespace ot
