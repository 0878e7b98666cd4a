// model/mlp_channels.cpp: see mlp_channels.h.
#include "model/mlp_channels.h"

#include <map>
#include <string>

#include "util/error.h"

namespace ot {
namespace {

// Module names inside a block: the expanding projections, then the contracting one.
struct MlpNames {
  std::vector<std::string> expand;
  std::string contract;
};

MlpNames mlp_names(BlockBase& block, const ModelConfig& c) {
  switch (c.arch) {
    case Arch::kOPT: return {{"fc1"}, "fc2"};
    case Arch::kGPT2: return {{"mlp.c_fc"}, "mlp.c_proj"};
    case Arch::kBloom: return {{"mlp.dense_h_to_4h"}, "mlp.dense_4h_to_h"};
    case Arch::kViT: return {{"intermediate.dense"}, "output.dense"};
    case Arch::kCLIPVision: return {{"mlp.fc1"}, "mlp.fc2"};
    default: break;
  }
  // The LLaMA block and the families built on it: separate or fused gate and up.
  for (const auto& m : block.named_modules("", /*include_self=*/false))
    if (m.key() == "mlp.gate_up_proj") return {{"mlp.gate_up_proj"}, "mlp.down_proj"};
  return {{"mlp.gate_proj", "mlp.up_proj"}, "mlp.down_proj"};
}

}  // namespace

std::vector<MlpProjection> mlp_projections(BlockBase& block, const ModelConfig& config) {
  const MlpNames names = mlp_names(block, config);
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& m : block.named_modules("", /*include_self=*/false)) modules[m.key()] = m.value();
  auto find = [&](const std::string& name) {
    auto it = modules.find(name);
    auto p = it == modules.end() ? nullptr : std::dynamic_pointer_cast<nn::ProjectionBase>(it->second);
    OT_REQUIRE(p != nullptr, arch_name(config.arch), " block: no MLP projection '", name, "'");
    return p;
  };
  std::vector<MlpProjection> out;
  for (const auto& e : names.expand) out.push_back({find(e), true, e == "mlp.gate_up_proj" ? 2 : 1});
  out.push_back({find(names.contract), false, 1});
  return out;
}

int64_t mlp_width(BlockBase& block, const ModelConfig& config) {
  const auto ps = mlp_projections(block, config);
  return ps.back().projection->in_features;
}

at::Tensor per_channel_sum(const MlpProjection& p, const at::Tensor& values, const at::Tensor& bias_values) {
  const int64_t dim = p.expands ? p.projection->output_dim() : 1 - p.projection->output_dim();
  at::Tensor v = values.to(torch::kDouble).movedim(dim, 0);           // (groups * F, ...)
  at::Tensor sums = v.reshape({v.size(0), -1}).sum(1);                // (groups * F)
  if (p.expands && bias_values.defined()) sums = sums + bias_values.to(torch::kDouble);
  return sums.view({p.groups, -1}).sum(0);                            // (F)
}

void keep_mlp_channels(BlockBase& block, const ModelConfig& config, const std::vector<int64_t>& keep) {
  const auto ps = mlp_projections(block, config);
  const int64_t F = ps.back().projection->in_features;
  OT_REQUIRE(!keep.empty(), "channel pruning: at least one MLP channel must stay");
  for (size_t i = 0; i < keep.size(); ++i)
    OT_REQUIRE(keep[i] >= 0 && keep[i] < F && (i == 0 || keep[i] > keep[i - 1]), "channel pruning: kept channel ",
               keep[i], " is out of order or outside [0, ", F, ")");
  const at::Tensor idx = torch::tensor(keep, torch::kLong);
  for (const MlpProjection& p : ps) {
    if (!p.expands) {
      p.projection->keep_inputs(idx);
      continue;
    }
    std::vector<at::Tensor> parts;
    for (int64_t g = 0; g < p.groups; ++g) parts.push_back(idx + g * F);
    p.projection->keep_outputs(torch::cat(parts));
  }
}

void restore_mlp_width(BlockBase& block, const ModelConfig& config, int64_t width) {
  const auto ps = mlp_projections(block, config);
  const int64_t F = ps.back().projection->in_features;
  OT_REQUIRE(width >= F, "restore_mlp_width: ", width, " < the block's ", F, " channels");
  if (width == F) return;
  for (const MlpProjection& p : ps) {
    if (!p.expands) {
      p.projection->grow_inputs(width);
      continue;
    }
    std::vector<at::Tensor> at;
    for (int64_t g = 0; g < p.groups; ++g) at.push_back(torch::arange(F, torch::kLong) + g * width);
    p.projection->place_outputs(p.groups * width, torch::cat(at));
  }
}

}  // namespace ot
