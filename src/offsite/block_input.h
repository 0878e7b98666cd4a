// offsite/block_input.h: the input of block 0 for a batch, whatever the model: token ids
// through a decoder's embeddings (with its attention context: padding, positions, RoPE),
// pixels through a vision encoder's patch embedding (which attends both ways and needs no
// context). Distillation and CKA layer selection run a model's blocks from here.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "data/batch.h"
#include "model/attention.h"
#include "model/block_model.h"

namespace ot {

// (B, T, C): the batch embedded by `model`; fills `ctx`. `what` names the caller in the
// error for a batch of the other kind (tokens for an encoder, images for a decoder).
at::Tensor embed_batch(BlockModelImpl& model, const Batch& batch, AttentionContext& ctx, const std::string& what);

}  // namespace ot
