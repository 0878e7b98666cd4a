// model/block.h: the three parts every model is made of, as abstract modules:
//   decoder LMs:     embed(ids) -> hidden (B, T, C);  block_i(hidden, ctx) -> hidden;  head(hidden) -> logits
//   vision encoders: embed(pixels) -> hidden (B, 1 + N, C); the same blocks; head -> pooled token
// Offsite-tuning is list surgery on the blocks, so the parts are separate and each family
// (model/families/) provides its own. Inside a block, parameters carry HF's names.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/config.h"

namespace ot {

class BlockBase : public torch::nn::Module {
 public:
  // x (B, T, C) -> (B, T, C). `cache`, when given, receives this step's keys/values.
  virtual at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) = 0;
};

class EmbedderBase : public torch::nn::Module {
 public:
  // ids (B, T) int64 -> (B, T, C), positions taken from ctx where the family has them.
  virtual at::Tensor forward(const at::Tensor& ids, const AttentionContext& ctx) = 0;
  // The token table (V, E), for heads tied to it.
  virtual at::Tensor token_weight() = 0;
};

class HeadBase : public torch::nn::Module {
 public:
  // Final norm (and OPT's project_out): (B, T, C) -> (B, T, E).
  virtual at::Tensor normalize(const at::Tensor& h) = 0;
};

// Vision encoders: pixels (B, channels, H, W) -> tokens (B, 1 + N, C), the class token first
// and the N patches in row-major order, positions added (interpolated to the image's size
// when asked; otherwise the image must have the checkpoint's size).
class PatchEmbedderBase : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& pixels, bool interpolate_positions) = 0;
};

// The end of a vision encoder before its output layer: the sequence as the model returns it
// (last_hidden_state) and the pooled class token (pooler_output), both from the last
// block's output h (B, T, C).
class VisionHeadBase : public torch::nn::Module {
 public:
  virtual at::Tensor sequence(const at::Tensor& h) = 0;  // (B, T, C)
  virtual at::Tensor pooled(const at::Tensor& h) = 0;    // (B, C)
};

// A family's parts plus how its parameters are named in HF checkpoints.
struct FamilyParts {
  std::shared_ptr<EmbedderBase> embed;
  std::vector<std::shared_ptr<BlockBase>> blocks;
  std::shared_ptr<HeadBase> head;
  std::string base_prefix;   // "model.decoder." (OPT), "transformer." (GPT-2, BLOOM), "model." (the RoPE decoders)
  std::string block_prefix;  // "layers." or "h.", relative to base_prefix
};

struct VisionParts {
  std::shared_ptr<PatchEmbedderBase> embed;
  std::vector<std::shared_ptr<BlockBase>> blocks;
  std::shared_ptr<VisionHeadBase> head;
  std::string base_prefix;   // "vit." (ViT), "vision_model." (CLIP)
  std::string block_prefix;  // "encoder.layer." or "encoder.layers."
};

FamilyParts make_family_parts(const ModelConfig& c);
VisionParts make_vision_parts(const ModelConfig& c);
std::shared_ptr<BlockBase> make_block(const ModelConfig& c, int64_t layer_index);

namespace families {
FamilyParts make_opt(const ModelConfig& c);
FamilyParts make_gpt2(const ModelConfig& c);
FamilyParts make_bloom(const ModelConfig& c);
FamilyParts make_llama(const ModelConfig& c);  // LLaMA, Mistral, Qwen2, Gemma, Phi-3
std::shared_ptr<BlockBase> make_opt_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_gpt2_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_bloom_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_llama_block(const ModelConfig& c, int64_t layer_index);
VisionParts make_vit(const ModelConfig& c);
VisionParts make_clip_vision(const ModelConfig& c);
std::shared_ptr<BlockBase> make_vit_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_clip_vision_block(const ModelConfig& c, int64_t layer_index);
}  // namespace families

}  // namespace ot
