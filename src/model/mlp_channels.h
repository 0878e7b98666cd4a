// model/mlp_channels.h: a block's MLP seen as its intermediate channels, for structured
// pruning of emulator blocks (offsite/channel_pruning.h). Channel i of an MLP of width F is
// output i of each expanding projection (fc1; gate and up; Phi-3's fused gate_up holds gate
// and up as two groups of F rows, so output i and F + i) and input i of the contracting one
// (fc2, down). Removing a channel removes exactly its term from the block's output.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/block.h"
#include "model/config.h"
#include "model/layers.h"

namespace ot {

// One projection of the MLP with the role it plays for the channels.
struct MlpProjection {
  std::shared_ptr<nn::ProjectionBase> projection;
  bool expands = true;  // channels are its outputs (else its inputs)
  int64_t groups = 1;   // channel blocks along that dimension (Phi-3's gate_up_proj: 2)
};

// The projections of `block`'s MLP, for the block's family (ot::Error if the family's names
// are not found: an internal inconsistency).
std::vector<MlpProjection> mlp_projections(BlockBase& block, const ModelConfig& config);

// The block's current MLP width F.
int64_t mlp_width(BlockBase& block, const ModelConfig& config);

// Per-channel sums (F) of `values` laid out as projection.weight (and `bias_values` as its
// bias, if it has one and expands): every element belonging to channel i summed into i.
at::Tensor per_channel_sum(const MlpProjection& p, const at::Tensor& values, const at::Tensor& bias_values);

// Keeps channels `keep` (sorted, distinct, each in [0, F)) in every projection of the MLP.
void keep_mlp_channels(BlockBase& block, const ModelConfig& config, const std::vector<int64_t>& keep);

// Back to `width` channels (the config's intermediate_size), the added ones all zero: the
// block computes the same function in the layout transformers expects.
void restore_mlp_width(BlockBase& block, const ModelConfig& config, int64_t width);

}  // namespace ot
