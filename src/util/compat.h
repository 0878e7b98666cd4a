// util/compat.h: every difference between the LibTorch versions offsite builds against
// (Debian's 1.13 on CPU here, 2.x with CUDA on clusters) lives in this one header.
#pragma once

#include <ATen/ATen.h>
#include <torch/version.h>

#include <optional>

namespace ot::compat {

// Fused scaled-dot-product attention. q: (B, H, T, D), k/v: (B, H, S, D); `mask` is an
// additive float bias broadcastable to (B, H, T, S) or undefined; dropout on the
// attention probabilities (0 outside training).
// 1.13 exposes it as the private `_scaled_dot_product_attention` returning a tuple;
// 2.x as the public `scaled_dot_product_attention` returning a tensor.
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k,
                                               const at::Tensor& v, const at::Tensor& mask,
                                               bool is_causal, double dropout_p = 0.0) {
  c10::optional<at::Tensor> m;
  if (mask.defined()) m = mask;
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, m, dropout_p, is_causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, m, dropout_p, false, is_causal));
#endif
}

// Version string of the LibTorch this binary was compiled against (patch is unreliable
// in Debian's 1.13 build, so report MAJOR.MINOR only).
inline const char* torch_version() { return TORCH_VERSION; }

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

}  // namespace ot::compat
