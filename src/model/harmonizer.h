// model/harmonizer.h: ScaleOT's harmonizer, the small trained module an emulator holds in
// place of a replaced block. A low-rank residual MLP on the block's input h (B, T, C):
//   harmonizer(h) = h + up(gelu(down(norm(h))))
//   norm: LayerNorm(C, eps 1e-5)   down: C -> r   up: r -> C   (r = the harmonizer's rank)
// It starts as the identity (up is zero), i.e. as if the block were dropped, and is trained by
// distillation toward the block it replaces (offsite/layer_replacement.h). Its parameters are
// stored under the replaced block's checkpoint prefix, `<block>.harmonizer.{norm,down,up}.*`,
// and `offsite.harmonizer_ranks` of the bundle's config.json says which blocks hold one
// (model/offsite_section.h), so every loader builds it before reading the weights.
#pragma once

#include <cstdint>
#include <memory>

#include "model/block.h"
#include "model/layers.h"

namespace ot {

class HarmonizerBlock : public BlockBase {
 public:
  // Shaped for `config.hidden_size` and `rank`; parameters uninitialised (init() or a load).
  HarmonizerBlock(const ModelConfig& config, int64_t rank);
  // x (B, T, C) -> (B, T, C). Attends to nothing: the context and any KV cache are unused.
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override;
  // The identity start: unit norm, down ~ N(0, 1 / C), zero up and biases. `generator`
  // draws down (the global generator when undefined).
  void init(const at::Generator& generator = {});
  int64_t rank() const { return rank_; }

 private:
  int64_t rank_;
  std::shared_ptr<torch::nn::Module> holder_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear down_{nullptr}, up_{nullptr};
};

// A new harmonizer of `rank` for a model of `config`'s width (uninitialised).
std::shared_ptr<HarmonizerBlock> make_harmonizer(const ModelConfig& config, int64_t rank);
// The harmonizer `block` is, or nullptr for an ordinary block.
HarmonizerBlock* as_harmonizer(BlockBase& block);

// The default rank: C / 4, at most 64, at least 1.
int64_t default_harmonizer_rank(const ModelConfig& config);

}  // namespace ot
