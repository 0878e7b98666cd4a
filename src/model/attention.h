// model/attention.h: what every block needs to attend: the per-forward context (additive
// attention bias from the causal + padding masks, ALiBi, position ids, RoPE tables), the
// per-layer key/value cache used by generation, and the attention core shared by all
// families. Shapes: B batch, T new tokens, S = past + T keys, H query heads, Hkv key/value
// heads, D head dim.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "model/config.h"

namespace ot {

// Keys and values of one block for all positions seen so far: (B, Hkv, S, D) each.
struct LayerKV {
  at::Tensor k, v;
};

// The cache of a whole model during generation.
struct KVCache {
  std::vector<LayerKV> layers;
  int64_t length = 0;  // S of the cached tensors
};

struct AttentionContext {
  // Additive bias (B, 1|H, T, S) in the compute dtype: 0 where attending is allowed, the
  // dtype's lowest value where not (HF's convention: finite, so fully padded rows never
  // turn into NaN). Undefined when plain causal attention needs no bias at all.
  at::Tensor bias;
  // The bias of sliding-window blocks (ModelConfig::sliding_window): `bias` with keys at or
  // before q - window masked too. Equal to `bias` (possibly undefined) when the window
  // covers every key.
  at::Tensor window_bias;
  at::Tensor position_ids;  // (B, T) int64, absolute positions of the new tokens
  at::Tensor rope_cos, rope_sin;  // (B, 1, T, D) for RoPE families, else undefined
  int64_t past_length = 0;
};

// Allowed-attention mask (B, T, S) bool from the key padding mask (B, S) (1 = real token,
// undefined = all real) for T new tokens after `past` cached ones.
at::Tensor causal_padding_allowed(const at::Tensor& key_mask, int64_t batch, int64_t T,
                                  int64_t past, const at::TensorOptions& device);

// 0 / lowest-value additive bias (B, 1, T, S) of `dtype` from an allowed mask (B, T, S).
at::Tensor additive_bias(const at::Tensor& allowed, at::ScalarType dtype);

// The same mask as transformers 4.35 builds it for GPT-2 and LLaMA: the causal and the
// padding parts are added, so a key both in the future and padded gets lowest + lowest
// = -inf. It only matters for query rows at padded positions (their outputs are never
// used, but they feed a left-padded batch's loss at the first real token).
at::Tensor additive_bias_summed(const at::Tensor& key_mask, int64_t batch, int64_t T, int64_t past,
                                at::ScalarType dtype);

// BLOOM's ALiBi bias (B, H, 1, S) for key mask (B, S): slope_h * (index among real keys).
at::Tensor alibi_bias(const at::Tensor& key_mask, int64_t num_heads, at::ScalarType dtype);
std::vector<double> alibi_slopes(int64_t num_heads);

// Allowed mask (B, T, S) with the sliding window applied: key k stays visible to the query at
// absolute position q only if k > q - window (positions are indices into the S keys).
at::Tensor within_window(const at::Tensor& allowed, int64_t T, int64_t past, int64_t window);

// RoPE inverse frequencies (head_dim / 2) float32, as transformers 4.55 computes them:
// 1 / theta^(2i/D), then scaled (linear: / factor; llama3: by wavelength band; dynamic: theta
// grown for `seq_len` beyond max_positions). `seq_len` only matters for dynamic scaling; the
// caller passes each forward's own max(position_ids) + 1, where transformers keeps the grown
// frequencies across calls until one stays below max_position_embeddings (the two agree on
// any single forward, and on calls whose lengths never shrink).
at::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling, int64_t max_positions,
                         int64_t seq_len, const at::TensorOptions& device);

// RoPE tables for positions (B, T): cos/sin (B, 1, T, D), rotate-half convention.
void rope_tables(const at::Tensor& position_ids, const at::Tensor& inv_freq, at::ScalarType dtype,
                 at::Tensor& cos, at::Tensor& sin);
// x * cos + rotate_half(x) * sin for x (B, H, T, D).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// softmax(q k^T * scale + bias) v. q (B, H, T, D), k/v (B, Hkv, S, D); Hkv divides H
// (grouped-query attention repeats each kv head H/Hkv times). `scale` multiplies the
// scores (usually 1/sqrt(D)). Without a bias and with T == S, attention is causal; in fp32
// on the CPU without dropout that case runs the fused kernel of causal_attention.h.
// Returns (B, T, H*D).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bias, double scale, double dropout = 0.0);

// Encoder attention: every query attends every key, softmax(q k^T * scale) v with no mask.
// q, k, v (B, H, T, D) -> (B, T, H*D).
at::Tensor attend_bidirectional(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                double dropout = 0.0);

// Dropout that is the identity outside training or at p = 0.
at::Tensor dropout_if(const at::Tensor& x, double p, bool training);

// Appends this step's k/v (B, Hkv, T, D) to `cache` (if given) and returns the full k/v.
void update_cache(LayerKV* cache, at::Tensor& k, at::Tensor& v);

}  // namespace ot
