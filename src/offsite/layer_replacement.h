// offsite/layer_replacement.h: ScaleOT's layer replacement. Some of the emulator's blocks are
// replaced by harmonizers (model/harmonizer.h), small low-rank residual MLPs that start as
// the identity and are trained by the emulator's distillation toward the block they stand in
// for (offsite/distill.h; with layer-wise KD each matches its own teacher block).
//
// Which blocks: an explicit list of original indices, or a ratio alpha. With a ratio, the
// emulator's kept middle blocks are cut, in order, into groups of `group` (the last may be
// shorter) and in each group of g blocks the int(alpha * g + 0.5) least important are
// replaced (ties: the lower index). ScaleOT learns the importance by reinforcement learning;
// here it is measured on calibration data as the block's influence on the hidden state,
//   importance(i) = 1 - mean over real tokens of cos(h_in, h_out)
// (h_in, h_out: block i's input and output in the full model), so a block that barely turns
// the residual stream counts as unimportant.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/batch.h"
#include "model/block_model.h"
#include "offsite/emulator.h"
#include "offsite/replace_spec.h"

namespace ot {

// importance(i) above for every middle block [bottom, n - top) of `full`, in order.
std::vector<double> block_importance(BlockModelImpl& full, int64_t bottom, int64_t top,
                                     const std::vector<Batch>& batches);

// The original indices to replace, ascending. `importance` holds one score per middle block
// (block_importance; may be empty for an explicit list). Every listed block must be an
// emulator block of `layout`; a layout that repeats blocks (CRaSh) is refused.
std::vector<int64_t> blocks_to_replace(const OffsiteLayout& layout, const ReplaceSpec& spec, int64_t group,
                                       const std::vector<double>& importance);

// Replaces the bundle blocks of those origins by new harmonizers of `rank` (the identity
// start, drawn from a generator seeded with `seed`) and returns offsite.harmonizer_ranks: per
// bundle block its harmonizer's rank, or 0.
std::vector<int64_t> replace_with_harmonizers(BlockModelImpl& bundle, const std::vector<int64_t>& replaced,
                                              int64_t rank, uint64_t seed);

// The whole step as `o` says (o.replace_layers, replace_group, harmonizer_rank): importance
// on `calibration` (scored whenever it is given; a ratio needs it), the blocks chosen,
// harmonizers in their place. Returns the section entries to record: `ranks` for
// offsite.harmonizer_ranks and `record` for offsite.emulator.layer_replacement; both are
// empty (null) when replacement is off.
struct LayerReplacement {
  nlohmann::json ranks, record;
};
LayerReplacement replace_emulator_layers(BlockModelImpl& full, BlockModelImpl& bundle, const OffsiteLayout& layout,
                                         const EmulatorOptions& o, const std::vector<Batch>& calibration,
                                         uint64_t seed);

// The record of the `offsite.emulator.layer_replacement` section.
nlohmann::json layer_replacement_record(const OffsiteLayout& layout, const ReplaceSpec& spec, int64_t group,
                                        int64_t rank, const std::vector<int64_t>& replaced,
                                        const std::vector<double>& importance);

}  // namespace ot
