// model/causal_attention.h: causal self-attention for fp32 CPU tensors, forward and
// backward, as one autograd function. Each (batch, head) pair runs on its own thread with
// single-threaded BLAS calls; query blocks skip the keys above the diagonal; q, k and v are
// read where they lie (any strides, unit stride along D) and the output is written straight
// into the (B, T, H*D) layout the output projection takes. `attend` uses it when it applies.
// Shapes: B batch, T tokens (queries = keys), H query heads, Hkv key/value heads, D head dim.
#pragma once

#include <ATen/ATen.h>

namespace ot {

// Whether causal_attention_cpu takes these tensors: q (B, H, T, D), k and v (B, Hkv, T, D)
// with Hkv dividing H, all float32 on the CPU with unit stride along D, T > 1, CPU autocast
// off, and every size and row stride within BLAS's 32-bit integers.
bool causal_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// softmax(scale * q k^T, keys after the query masked) v for the tensors above, returned as
// a contiguous (B, T, H*D) tensor; query head h uses kv head h / (H / Hkv). Differentiable
// in q, k and v (once: its backward is not itself differentiable). The probabilities
// (B, H, T, T) are kept for backward only when a gradient will be asked for.
at::Tensor causal_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                double scale);

}  // namespace ot
