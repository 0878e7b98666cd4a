// model/harmonizer.cpp: see harmonizer.h.
#include "model/harmonizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace ot {

HarmonizerBlock::HarmonizerBlock(const ModelConfig& config, int64_t rank) : rank_(rank) {
  const int64_t C = config.hidden_size;
  OT_REQUIRE(rank >= 1 && rank <= C, "harmonizer: rank ", rank, " outside [1, ", C, "] (the hidden size)");
  // One submodule "harmonizer" so that the checkpoint names read <block>.harmonizer.down.weight.
  holder_ = register_module("harmonizer", std::make_shared<torch::nn::Module>());
  norm_ = holder_->register_module("norm", nn::LayerNorm(nn::LayerNormOptions(C)));
  down_ = holder_->register_module("down", nn::Linear(nn::LinearOptions(C, rank)));
  up_ = holder_->register_module("up", nn::Linear(nn::LinearOptions(rank, C)));
}

at::Tensor HarmonizerBlock::forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
  (void)ctx;
  (void)cache;
  return x + up_(nn::activation("gelu", down_(norm_(x))));
}

void HarmonizerBlock::init(const at::Generator& generator) {
  torch::NoGradGuard ng;
  norm_->weight.fill_(1.0);
  norm_->bias.zero_();
  const double std = 1.0 / std::sqrt(double(down_->in_features));
  if (generator.defined()) down_->weight.normal_(0.0, std, generator);
  else down_->weight.normal_(0.0, std);
  down_->bias.zero_();
  up_->weight.zero_();
  up_->bias.zero_();
}

std::shared_ptr<HarmonizerBlock> make_harmonizer(const ModelConfig& config, int64_t rank) {
  return std::make_shared<HarmonizerBlock>(config, rank);
}

HarmonizerBlock* as_harmonizer(BlockBase& block) { return dynamic_cast<HarmonizerBlock*>(&block); }

int64_t default_harmonizer_rank(const ModelConfig& config) {
  return std::max<int64_t>(1, std::min<int64_t>(64, config.hidden_size / 4));
}

}  // namespace ot
