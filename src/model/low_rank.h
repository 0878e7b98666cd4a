// model/low_rank.h: a block's attention projections for rank compression (offsite/
// rank_compression.h): every projection of the block that is not part of its MLP (q, k, v and
// output; fused ones as they are stored: GPT-2's c_attn, BLOOM's query_key_value), by module
// name inside the block, and the rank a truncated SVD keeps for a rank-or-energy setting.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/block.h"
#include "model/config.h"
#include "model/layers.h"

namespace ot {

using NamedProjection = std::pair<std::string, std::shared_ptr<nn::ProjectionBase>>;

// The attention projections of `block`, in registration order.
std::vector<NamedProjection> attention_projections(BlockBase& block, const ModelConfig& config);

// The projection at module path `name` inside `block`; ot::Error naming `source` if there is none.
std::shared_ptr<nn::ProjectionBase> find_projection(BlockBase& block, const std::string& name, const std::string& source);

// The rank for `spec`: spec >= 1 is a rank (capped at the number of singular values); spec in
// (0, 1) is an energy fraction, the smallest r with sum_{i<r} s_i^2 >= spec * sum_i s_i^2.
int64_t rank_for(const at::Tensor& singular_values, double spec);

}  // namespace ot
