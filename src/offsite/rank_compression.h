// offsite/rank_compression.h: rank reduction of the emulator's attention projections by
// truncated SVD (ScaleOT's selective rank compression; GradOT's rank decomposition with the
// leading singular values kept). Every attention projection of every emulator block (never
// an adapter block) becomes two factors, W ~ B A (model/layers.h), of rank `spec` (>= 1) or
// of the smallest rank holding the fraction `spec` (< 1) of W's squared singular values. The
// bundle stores the factors (`<projection>.svd_a`, `.svd_b`) in place of the weight, and
// `offsite.svd_ranks` says which (model/offsite_section.h); `ot convert plain-hf` multiplies
// them out for transformers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "model/block_model.h"
#include "offsite/emulator.h"

namespace ot {

// Factorizes the emulator blocks of `bundle` (each distinct block once) and returns
// offsite.svd_ranks: per bundle block, projection name -> rank ({} for dense blocks).
nlohmann::json compress_emulator_ranks(BlockModelImpl& bundle, const OffsiteLayout& layout, double spec);

}  // namespace ot
