// model/low_rank.cpp: see low_rank.h.
#include "model/low_rank.h"

#include <algorithm>
#include <set>

#include "model/mlp_channels.h"
#include "util/error.h"

namespace ot {

std::vector<NamedProjection> attention_projections(BlockBase& block, const ModelConfig& config) {
  std::set<const nn::ProjectionBase*> mlp;
  for (const MlpProjection& p : mlp_projections(block, config)) mlp.insert(p.projection.get());
  std::vector<NamedProjection> out;
  for (const auto& m : block.named_modules("", /*include_self=*/false)) {
    auto p = std::dynamic_pointer_cast<nn::ProjectionBase>(m.value());
    if (p && !mlp.count(p.get())) out.emplace_back(m.key(), p);
  }
  return out;
}

std::shared_ptr<nn::ProjectionBase> find_projection(BlockBase& block, const std::string& name, const std::string& source) {
  for (const auto& m : block.named_modules("", /*include_self=*/false))
    if (m.key() == name)
      if (auto p = std::dynamic_pointer_cast<nn::ProjectionBase>(m.value())) return p;
  fail(source, ": the block has no projection '", name, "'");
}

int64_t rank_for(const at::Tensor& singular_values, double spec) {
  const int64_t n = singular_values.numel();
  OT_REQUIRE(spec > 0.0, "--svd: expected a rank >= 1 or an energy fraction in (0, 1), got ", spec);
  if (spec >= 1.0) {
    OT_REQUIRE(spec == std::floor(spec), "--svd: a rank must be an integer, got ", spec);
    return std::min<int64_t>(n, static_cast<int64_t>(spec));
  }
  const at::Tensor energy = singular_values.to(torch::kCPU, torch::kDouble).pow(2);
  const at::Tensor cumulative = energy.cumsum(0) / energy.sum();
  const double* c = cumulative.contiguous().data_ptr<double>();
  for (int64_t r = 0; r < n; ++r)
    if (c[r] >= spec - 1e-12) return r + 1;
  return n;
}

}  // namespace ot
