// model/block.h: the three parts every decoder LM is made of, as abstract modules:
//   embed(ids) -> hidden (B, T, C);  block_i(hidden, ctx) -> hidden;  head(hidden) -> logits.
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

// A family's parts plus how its parameters are named in HF checkpoints.
struct FamilyParts {
  std::shared_ptr<EmbedderBase> embed;
  std::vector<std::shared_ptr<BlockBase>> blocks;
  std::shared_ptr<HeadBase> head;
  std::string base_prefix;   // "model.decoder." (OPT), "transformer." (GPT-2, BLOOM), "model." (LLaMA)
  std::string block_prefix;  // "layers." or "h.", relative to base_prefix
};

FamilyParts make_family_parts(const ModelConfig& c);
std::shared_ptr<BlockBase> make_block(const ModelConfig& c, int64_t layer_index);

namespace families {
FamilyParts make_opt(const ModelConfig& c);
FamilyParts make_gpt2(const ModelConfig& c);
FamilyParts make_bloom(const ModelConfig& c);
FamilyParts make_llama(const ModelConfig& c);
std::shared_ptr<BlockBase> make_opt_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_gpt2_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_bloom_block(const ModelConfig& c, int64_t layer_index);
std::shared_ptr<BlockBase> make_llama_block(const ModelConfig& c, int64_t layer_index);
}  // namespace families

}  // namespace ot
