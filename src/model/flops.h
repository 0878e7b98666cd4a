// model/flops.h: model FLOPs of one training token, for model FLOP utilisation (MFU).
// Counted as the PaLM paper's appendix does: 2 FLOPs per weight of a matrix product per
// token forward, plus attention's two products over the sequence (4 * T * C per block,
// the full T x T square); the backward pass is counted from what it really computes here:
// activation gradients (as much again as the forward) through every part at or above the
// lowest part that trains, and weight gradients (as much again) for the matrices that
// train. Recomputation by activation checkpointing is not counted (it is not model work).
// Embedding lookups and element-wise work are left out.
#pragma once

#include <cstdint>

#include "model/decoder_lm.h"

namespace ot {

// Training FLOPs per token of `model` in its current trainable state (requires_grad), at
// sequence length `seq_len`.
double training_flops_per_token(DecoderLM& model, int64_t seq_len);
// Forward FLOPs per token (inference and evaluation).
double forward_flops_per_token(DecoderLM& model, int64_t seq_len);

}  // namespace ot
