// util/compat.h: every difference between the LibTorch versions offsite builds against
// (Debian's 1.13 on CPU here, 2.x with CUDA on clusters) lives in this one header.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <c10/util/C++17.h>

#include <optional>
#include <string>

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

// Autocast (mixed precision) state per device type. 2.4 made the API device-generic and
// deprecated the per-device functions that 1.13 has (CUDA's was plain `is_enabled`).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocast_enabled(c10::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
inline void set_autocast_enabled(c10::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
inline at::ScalarType autocast_dtype(c10::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
inline void set_autocast_dtype(c10::DeviceType t, at::ScalarType d) { at::autocast::set_autocast_dtype(t, d); }
#else
inline bool autocast_enabled(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void set_autocast_enabled(c10::DeviceType t, bool on) {
  if (t == c10::DeviceType::CUDA) at::autocast::set_enabled(on); else at::autocast::set_cpu_enabled(on);
}
inline at::ScalarType autocast_dtype(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
inline void set_autocast_dtype(c10::DeviceType t, at::ScalarType d) {
  if (t == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(d); else at::autocast::set_autocast_cpu_dtype(d);
}
#endif

// Version string of the LibTorch this binary was compiled against (patch is unreliable
// in Debian's 1.13 build, so report MAJOR.MINOR only).
inline const char* torch_version() { return TORCH_VERSION; }

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// The key under which torch::optim keeps a parameter's state: 1.13, the address of its
// TensorImpl as a string; 2.x, the address itself.
#if TORCH_VERSION_MAJOR >= 2
inline void* optimizer_state_key(const at::Tensor& p) { return p.unsafeGetTensorImpl(); }
#else
inline std::string optimizer_state_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }
#endif

}  // namespace ot::compat
