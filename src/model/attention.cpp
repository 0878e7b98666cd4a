// model/attention.cpp: see attention.h.
#include "model/attention.h"

#include <torch/torch.h>

#include <cmath>

#include "model/causal_attention.h"
#include "util/compat.h"

namespace ot {

at::Tensor causal_padding_allowed(const at::Tensor& key_mask, int64_t batch, int64_t T,
                                  int64_t past, const at::TensorOptions& device) {
  const int64_t S = past + T;
  auto opts = device.dtype(torch::kLong);
  // key j is visible to query i (absolute position past + i) iff j <= past + i
  auto q_pos = torch::arange(past, S, opts).view({T, 1});
  auto k_pos = torch::arange(0, S, opts).view({1, S});
  auto allowed = (k_pos <= q_pos).unsqueeze(0).expand({batch, T, S});
  if (key_mask.defined()) allowed = allowed & key_mask.to(torch::kBool).view({batch, 1, S});
  return allowed;
}

namespace {
// The lowest finite value of a floating dtype (torch.finfo(dtype).min), as a double.
double lowest_of(at::ScalarType dtype) {
  switch (dtype) {
    case torch::kHalf: return double(std::numeric_limits<c10::Half>::lowest());
    case torch::kBFloat16: return double(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    default: return double(std::numeric_limits<float>::lowest());
  }
}
}  // namespace

at::Tensor additive_bias(const at::Tensor& allowed, at::ScalarType dtype) {
  auto opts = allowed.options().dtype(dtype);
  auto zero = torch::zeros({}, opts);
  auto lowest = torch::full({}, at::Scalar(lowest_of(dtype)), opts);
  return torch::where(allowed, zero, lowest).unsqueeze(1);
}

at::Tensor additive_bias_summed(const at::Tensor& key_mask, int64_t batch, int64_t T, int64_t past,
                                at::ScalarType dtype) {
  auto causal = causal_padding_allowed(at::Tensor(), batch, T, past, key_mask.options());  // (B, T, S)
  auto pad = key_mask.to(torch::kBool).view({batch, 1, past + T}).expand_as(causal);
  // Summed in fp32 from the compute dtype's own lowest value, as HF sums finfo(dtype).min
  // twice: one masked term stays finite, two overflow to -inf, in 16 bits as in 32.
  auto f = key_mask.options().dtype(torch::kFloat);
  const double lowest = lowest_of(dtype == torch::kDouble ? torch::kFloat : dtype);
  auto b = torch::where(causal, torch::zeros({}, f), torch::full({}, lowest, f)) +
           torch::where(pad, torch::zeros({}, f), torch::full({}, lowest, f));
  return b.to(dtype).unsqueeze(1);
}

std::vector<double> alibi_slopes(int64_t n) {
  // Geometric slopes 2^(-8/n') for the largest power of two n' <= n, interleaved with the
  // slopes of 2n' for the remaining heads (the ALiBi paper's recipe, as BLOOM uses it).
  int64_t p2 = 1;
  while (p2 * 2 <= n) p2 *= 2;
  auto base_for = [](int64_t m) { return std::pow(2.0, -std::pow(2.0, -(std::log2(double(m)) - 3))); };
  std::vector<double> s;
  double base = base_for(p2);
  for (int64_t i = 1; i <= p2; ++i) s.push_back(std::pow(base, double(i)));
  if (p2 != n) {
    double extra = base_for(2 * p2);
    int64_t remaining = std::min(p2, n - p2);
    for (int64_t i = 0; i < remaining; ++i) s.push_back(std::pow(extra, double(1 + 2 * i)));
  }
  return s;
}

at::Tensor alibi_bias(const at::Tensor& key_mask, int64_t num_heads, at::ScalarType dtype) {
  // HF computes slopes in fp32 and positions as (cumsum(mask) - 1) * mask.
  auto slopes_d = alibi_slopes(num_heads);
  std::vector<float> slopes_f(slopes_d.begin(), slopes_d.end());
  auto slopes = torch::tensor(slopes_f, key_mask.options().dtype(torch::kFloat));
  auto m = key_mask.to(torch::kFloat);
  auto pos = ((m.cumsum(-1) - 1) * m).unsqueeze(1);             // (B, 1, S)
  auto alibi = slopes.view({1, num_heads, 1}) * pos;             // (B, H, S)
  return alibi.unsqueeze(2).to(dtype);                           // (B, H, 1, S)
}

at::Tensor within_window(const at::Tensor& allowed, int64_t T, int64_t past, int64_t window) {
  const int64_t S = past + T;
  auto opts = allowed.options().dtype(torch::kLong);
  auto q_pos = torch::arange(past, S, opts).view({T, 1});
  auto k_pos = torch::arange(0, S, opts).view({1, S});
  return allowed & (k_pos > q_pos - window).unsqueeze(0);
}

at::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& s, int64_t max_positions,
                         int64_t seq_len, const at::TensorOptions& device) {
  auto exponents = torch::arange(0, head_dim, 2, device.dtype(torch::kLong)).to(torch::kFloat) / double(head_dim);
  using K = RopeScaling::Kind;
  if (s.kind == K::kDynamic && seq_len > max_positions) {
    // theta * ((factor * L / max) - (factor - 1))^(D / (D - 2)), in float32 as transformers
    // computes it from the tensor max(position_ids) + 1.
    auto L = torch::full({}, seq_len, device.dtype(torch::kLong));
    auto grown = torch::pow(L * s.factor / double(max_positions) - (s.factor - 1.0),
                            double(head_dim) / double(head_dim - 2)) * theta;
    return 1.0 / torch::pow(grown, exponents);
  }
  auto inv = 1.0 / torch::pow(theta, exponents);
  if (s.kind == K::kLinear) return inv / s.factor;
  if (s.kind != K::kLlama3) return inv;
  // llama3: wavelengths shorter than original / high_freq_factor keep their frequency, longer
  // than original / low_freq_factor are divided by factor, the band between is interpolated.
  const double orig = double(s.original_max_positions);
  const double low_wavelen = orig / s.low_freq_factor, high_wavelen = orig / s.high_freq_factor;
  auto wavelen = 2.0 * M_PI / inv;
  auto scaled = torch::where(wavelen > low_wavelen, inv / s.factor, inv);
  auto smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

void rope_tables(const at::Tensor& position_ids, const at::Tensor& inv_freq, at::ScalarType dtype,
                 at::Tensor& cos, at::Tensor& sin) {
  auto freqs = position_ids.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // (B, T, D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                           // (B, T, D)
  cos = emb.cos().to(dtype).unsqueeze(1);
  sin = emb.sin().to(dtype).unsqueeze(1);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return x * cos + torch::cat({-x2, x1}, -1) * sin;
}

at::Tensor dropout_if(const at::Tensor& x, double p, bool training) {
  return (training && p > 0.0) ? torch::dropout(x, p, true) : x;
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bias, double scale, double dropout) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1);
  // Plain causal self-attention in fp32 on the CPU: the fused kernel (causal_attention.h).
  if (!bias.defined() && dropout == 0.0 && k.size(2) == T && causal_attention_applies(q, k, v))
    return causal_attention_cpu(q, k, v, scale);
  at::Tensor kk = k, vv = v;
  if (Hkv != H) {  // GQA: (B, Hkv, S, D) -> (B, H, S, D)
    kk = k.repeat_interleave(H / Hkv, 1);
    vv = v.repeat_interleave(H / Hkv, 1);
  }
  // The fused kernel scales by 1/sqrt(D); fold any other scale into q.
  const double default_scale = 1.0 / std::sqrt(double(D));
  at::Tensor qq = std::abs(scale - default_scale) > 1e-12 ? q * (scale / default_scale) : q;
  const bool causal = !bias.defined();
  at::Tensor out = compat::scaled_dot_product_attention(qq, kk, vv, bias, causal && T > 1, dropout);
  return out.transpose(1, 2).reshape({B, T, H * D});
}

at::Tensor attend_bidirectional(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                double dropout) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const double default_scale = 1.0 / std::sqrt(double(D));
  at::Tensor qq = std::abs(scale - default_scale) > 1e-12 ? q * (scale / default_scale) : q;
  at::Tensor out = compat::scaled_dot_product_attention(qq, k, v, at::Tensor(), /*is_causal=*/false, dropout);
  return out.transpose(1, 2).reshape({B, T, H * D});
}

void update_cache(LayerKV* cache, at::Tensor& k, at::Tensor& v) {
  if (cache == nullptr) return;
  if (cache->k.defined()) {
    cache->k = torch::cat({cache->k, k}, 2);
    cache->v = torch::cat({cache->v, v}, 2);
  } else {
    cache->k = k;
    cache->v = v;
  }
  k = cache->k;
  v = cache->v;
}

}  // namespace ot
