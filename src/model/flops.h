// model/flops.h: model FLOPs of one training token, for model FLOP utilisation (MFU).
// Counted as the PaLM paper's appendix does: 2 FLOPs per weight of a matrix product per
// token forward, plus attention's two products over the sequence (4 * T * C per block,
// the full T x T square); the backward pass is counted from what it really computes here:
// activation gradients (as much again as the forward) through every part at or above the
// lowest part that trains, and weight gradients (as much again) for the matrices that
// train. Recomputation by activation checkpointing is not counted (it is not model work).
// Embedding lookups and element-wise work are left out, and so is a vision encoder's patch
// projection (once per token, like an embedding); its output layers count once per image.
// Matrices are counted as stored, so a compressed emulator counts what it computes: low-rank
// factors, pruned MLP widths, and harmonizers (two matrices, no attention).
#pragma once

#include <cstdint>

#include "model/block_model.h"
#include "model/decoder_lm.h"

namespace ot {

// Training FLOPs per token of `model` in its current trainable state (requires_grad), at
// sequence length `seq_len` (a vision encoder's: patches + class token).
double training_flops_per_token(BlockModelImpl& model, int64_t seq_len);
// Forward FLOPs per token (inference and evaluation).
double forward_flops_per_token(BlockModelImpl& model, int64_t seq_len);
inline double training_flops_per_token(DecoderLM& model, int64_t seq_len) {
  return training_flops_per_token(*model, seq_len);
}
inline double forward_flops_per_token(DecoderLM& model, int64_t seq_len) {
  return forward_flops_per_token(*model, seq_len);
}

}  // namespace ot
