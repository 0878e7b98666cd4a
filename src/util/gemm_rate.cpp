// util/gemm_rate.cpp: see gemm_rate.h.
#include "util/gemm_rate.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "util/gpu.h"
#include "util/host_threads.h"

namespace ot {

GemmRate measure_gemm_rate(const c10::Device& device, int64_t n, double min_seconds) {
  GemmRate r;
  r.device = gpu::device_name(device);
  r.n = n;
  r.threads = blas_threads();  // the GEMM's threads: OpenBLAS's own pool where it has one
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts), c = at::empty({n, n}, opts);
  at::mm_out(c, a, b);  // first touch, library warm-up
  gpu::synchronize(device);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double best = 0.0;
  do {
    const auto t0 = clock::now();
    at::mm_out(c, a, b);
    gpu::synchronize(device);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, 2.0 * double(n) * double(n) * double(n) / s * 1e-9);
  } while (std::chrono::duration<double>(clock::now() - start).count() < min_seconds);
  r.gflops = best;
  return r;
}

std::string describe(const GemmRate& r) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f GFLOP/s (%d thread%s)", r.gflops, r.threads, r.threads == 1 ? "" : "s");
  return "GEMM " + std::to_string(r.n) + "^2 fp32 on " + r.device + ": " + buf;
}

}  // namespace ot
