// model/lm_loss.h: the causal language-modelling loss. Position t of a sequence predicts the
// token at t + 1; labels of -100 (and the last position, which has nothing to predict) are
// not scored. For fp32 CPU logits one fused pass per row computes the loss and, in
// backward, the logits' gradient, without the log-softmax, the shifted copy or their
// gradients that cross_entropy on sliced logits materialises (each the size of the
// logits). Shapes: B batch, T tokens, V vocabulary.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace ot {

enum class LossReduction { kMean, kSum };

// Shifted causal-LM cross entropy over the tokens whose label is not -100, their mean (the
// training loss) or their sum (for means over many batches): logits (B, T, V), labels (B, T)
// -> scalar (fp32). A label outside [0, V) other than -100 is an error.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels,
                          LossReduction reduction = LossReduction::kMean);

// The number of tokens causal_lm_loss scores: labels after the first position that are not -100.
int64_t causal_lm_scored_tokens(const at::Tensor& labels);

}  // namespace ot
