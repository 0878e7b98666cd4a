// offsite/gradient_alignment.h: how well the emulator stands in for the full model while the
// data owner fine-tunes: the cosine similarity between the adapter's gradients computed
// through the emulator (the bundle) and through the full model, on the same batches.
//   g_e(b), g_f(b): block b's parameter gradients (flattened, concatenated) through the
//                   bundle and through the full model, for the language-modelling loss
//   cos(b) = <g_e(b), g_f(b)> / (|g_e(b)| |g_f(b)|), per batch; per block, the mean over
//   batches; overall, the mean over the adapter blocks.
// 1 means the data owner's updates point where fine-tuning the full model would take them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/batch.h"
#include "model/decoder_lm.h"
#include "offsite/emulator.h"

namespace ot {

// Cosine similarity of two gradients given as lists of tensors (one per parameter, paired
// by position; shapes must match): sum of dot products / (norm of all a * norm of all b).
// NaN when either side is all zero (no direction to compare).
double gradient_cosine(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b);

struct GradientAlignment {
  std::vector<int64_t> adapter_blocks;  // original indices, bottom first
  std::vector<double> block_cosine;     // per adapter block, mean over batches
  double mean_cosine = 0.0;             // mean over the adapter blocks
  int64_t batches = 0;
};

// Over `batches` (token batches with labels): `bundle` is the emulator bundle built from
// `full` with `layout`. Gradients are taken with autograd.grad and leave both models'
// .grad untouched; both models are put in eval mode (no dropout) for the measurement.
GradientAlignment gradient_alignment(DecoderLMImpl& bundle, DecoderLMImpl& full, const OffsiteLayout& layout,
                                     const std::vector<Batch>& batches);

// A table for the console: one row per adapter block (its original index) and the mean, the
// zero-shot emulator's cosine and, when given, the distilled emulator's.
std::string format_gradient_alignment(const GradientAlignment& zero_shot,
                                      const std::optional<GradientAlignment>& distilled);

}  // namespace ot
