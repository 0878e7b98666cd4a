// model/row_math.h: float arithmetic on one row that GCC vectorises without -ffast-math,
// shared by the CPU kernels (model/causal_attention.cpp, model/lm_loss.cpp): exp of a
// non-positive argument, and a row's max and sum in kLanes independent partial results.
// OT_ROW_LOOP builds a row loop for AVX-512, AVX2 and the x86-64 baseline (SSE2), chosen at
// load time; the helpers here are inlined into such loops and vectorise with them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ot {
namespace row_math {

// exp(x) for x <= 0, written so that GCC vectorises a loop of it: x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 in two parts, so n ln2 loses nothing), exp(r) by its Taylor
// polynomial of degree 7 (relative error about 1e-7), 2^n built in the exponent bits.
// Below -87 (2^n would leave the normal range) the result is 0; NaN stays NaN. A bit mask,
// not a branch, selects the result: GCC keeps a branch around float arithmetic (which
// might trap), and a branch stops the loop from vectorising.
inline float exp_nonpositive(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693359375f) - n * -2.12194440054690583e-4f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n sits in the low mantissa bits of t; unsigned arithmetic keeps extreme x defined.
  std::uint32_t t_bits, shifter_bits;
  std::memcpy(&t_bits, &t, sizeof t);
  std::memcpy(&shifter_bits, &shifter, sizeof shifter);
  const std::uint32_t pow2_bits = (t_bits - shifter_bits + 127u) << 23;
  float pow2;
  std::memcpy(&pow2, &pow2_bits, sizeof pow2);
  const float y = p * pow2;
  std::uint32_t y_bits;
  std::memcpy(&y_bits, &y, sizeof y);
  y_bits &= 0u - static_cast<std::uint32_t>((x >= -87.0f) | (x != x));
  float out;
  std::memcpy(&out, &y_bits, sizeof out);
  return out;
}

// Independent partial sums: a reduction GCC vectorises without -ffast-math's reordering.
constexpr int kLanes = 8;

// The largest of x[0, n), n >= 1 (NaNs are passed over).
inline float max_of(const float* x, int64_t n) {
  float lane[kLanes];
  std::fill(lane, lane + kLanes, x[0]);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  float top = lane[0];
  for (int j = 1; j < kLanes; ++j) top = lane[j] > top ? lane[j] : top;
  for (; i < n; ++i) top = x[i] > top ? x[i] : top;
  return top;
}

// The sum of x[0, n): kLanes partial sums over the whole blocks, the tail, then the lanes.
inline float sum_of(const float* x, int64_t n) {
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += x[i + j];
  float sum = 0.0f;
  for (; i < n; ++i) sum += x[i];
  for (int j = 0; j < kLanes; ++j) sum += lane[j];
  return sum;
}

}  // namespace row_math
}  // namespace ot

// The AVX clones fuse multiply-adds, so their last bits can differ from the baseline's (as
// OpenBLAS's GEMM kernels differ between CPUs); on one machine a run repeats bit for bit.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OT_ROW_LOOP __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OT_ROW_LOOP
#endif
