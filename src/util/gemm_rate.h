// util/gemm_rate.h: the machine's dense fp32 matrix-multiply rate, measured on the spot. These
// VMs vary several-fold in speed over a day, so every timing the tools print comes with the
// GEMM rate of the same run: a reader can tell a slow hour from a slow change.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace ot {

struct GemmRate {
  std::string device;     // "cpu" or the GPU's name
  int64_t n = 0;          // square size
  int threads = 0;        // intra-op threads it ran with (CPU)
  double gflops = 0.0;    // 2 n^3 per product, best of the repetitions
};

// Multiplies two n x n fp32 matrices on `device` for at least `min_seconds` (after one
// untimed product) and returns the best rate observed.
GemmRate measure_gemm_rate(const c10::Device& device, int64_t n = 2048, double min_seconds = 1.0);

// "GEMM 2048^2 fp32 on cpu: 153.2 GFLOP/s (2 threads)".
std::string describe(const GemmRate& r);

}  // namespace ot
