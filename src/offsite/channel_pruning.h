// offsite/channel_pruning.h: structured pruning of the emulator's MLP intermediate channels
// (GradOT's selective channel pruning), training-free. In every emulator block (never an
// adapter block) the int(ratio * F) channels of lowest score go (model/mlp_channels.h):
//   magnitude: s_i = sum over channel i's weights and biases of w^2
//   gradot:    s_i = 1/2 sum_w Fisher_w w^2 + lambda * sum_w g_w w
// where, over the calibration batches of the emulator's own language-modelling loss,
// g_w is the mean gradient and Fisher_w = mean(g_w^2) the diagonal empirical Fisher. The
// first term is the second-order loss change of removing the channel (what keeps the
// adapter's gradients: channels the loss is curved along stay); the second is minus the
// first-order change (-g.w), so lambda > 0 prefers to remove channels whose removal raises
// the emulator's loss, widening the gap between emulator and full model (the privacy knob).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch.h"
#include "model/block_model.h"
#include "offsite/emulator.h"

namespace ot {

// The channel scores of every distinct emulator block of `bundle`, by bundle position of its
// first occurrence (repeated blocks are scored and pruned once). `calibration` is used by
// "gradot" only (token batches with labels; a decoder bundle).
std::vector<std::pair<int64_t, at::Tensor>> emulator_channel_scores(BlockModelImpl& bundle, const OffsiteLayout& layout,
                                                                    const EmulatorOptions& o,
                                                                    const std::vector<Batch>& calibration);

// Channels to keep from `scores` (F): the F - int(ratio * F) highest (at least one; ties
// keep the lower index), in ascending order.
std::vector<int64_t> channels_to_keep(const at::Tensor& scores, double ratio);

// Prunes the emulator blocks of `bundle` as `o` says (o.prune_channels, o.channel_score,
// o.gradot_lambda) and returns every bundle block's MLP width (offsite.mlp_channels).
std::vector<int64_t> prune_emulator_channels(BlockModelImpl& bundle, const OffsiteLayout& layout,
                                             const EmulatorOptions& o, const std::vector<Batch>& calibration);

}  // namespace ot
