// model/activation_checkpoint.h: activation checkpointing of one transformer block, as
// torch.utils.checkpoint (reentrant form) does it. The block runs without recording its
// intermediate activations; only its input is kept. During backward the block runs again,
// with the random-number state (dropout) and the autocast state of the first run, and the
// gradients flow through that recomputation into the block's parameters and its input.
// Memory per block drops from all of its activations to its input (B, T, C), for about one
// extra forward pass of compute.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace ot {

using BlockFunction = std::function<at::Tensor(const at::Tensor& h)>;

// fn(h) with its activations recomputed during backward. `fn` must capture by value what
// it uses (backward runs after the caller's frame is gone) and must be deterministic given
// the random state. Outside grad mode it is simply fn(h).
at::Tensor checkpointed(const BlockFunction& fn, const at::Tensor& h);

}  // namespace ot
