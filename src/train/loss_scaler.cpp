// train/loss_scaler.cpp: see loss_scaler.h.
#include "train/loss_scaler.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "util/error.h"

namespace ot {

DynamicLossScaler::DynamicLossScaler(LossScalerOptions o) : o_(o), scale_(o.init_scale) {
  OT_REQUIRE(o_.init_scale > 0 && std::isfinite(o_.init_scale), "loss scaler: initial scale must be positive, got ",
             o_.init_scale);
  OT_REQUIRE(o_.growth_factor > 1.0, "loss scaler: growth factor must be > 1, got ", o_.growth_factor);
  OT_REQUIRE(o_.backoff_factor > 0.0 && o_.backoff_factor < 1.0, "loss scaler: backoff factor must be in (0, 1), got ",
             o_.backoff_factor);
  OT_REQUIRE(o_.growth_interval > 0, "loss scaler: growth interval must be positive, got ", o_.growth_interval);
}

bool DynamicLossScaler::unscale_and_check(const std::vector<at::Tensor>& params) const {
  torch::NoGradGuard ng;
  // One fused kernel per (device, dtype) group of CUDA gradients; a plain loop elsewhere.
  std::map<std::pair<int, int>, std::vector<at::Tensor>> cuda_groups;  // (device index, dtype)
  std::vector<at::Tensor> flags;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.is_cuda())
      cuda_groups[{g.device().index(), static_cast<int>(g.scalar_type())}].push_back(g);
    else {
      g.mul_(1.0 / scale_);
      flags.push_back(g.isfinite().all().logical_not());
    }
  }
  for (auto& [key, grads] : cuda_groups) {
    const auto on = torch::TensorOptions().device(grads.front().device()).dtype(torch::kFloat);
    auto found = torch::zeros({1}, on);
    auto inv = torch::full({1}, 1.0 / scale_, on);
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found, inv);
    flags.push_back(found.gt(0).squeeze().to(torch::kCPU));
  }
  bool any = false;
  for (auto& f : flags) any = any || f.to(torch::kCPU).item<bool>();
  return any;
}

void DynamicLossScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= o_.backoff_factor;
    growth_tracker_ = 0;
    ++skipped_;
    return;
  }
  if (++growth_tracker_ == o_.growth_interval) {
    scale_ *= o_.growth_factor;
    growth_tracker_ = 0;
  }
}

nlohmann::json DynamicLossScaler::state() const {
  return {{"scale", scale_}, {"growth_tracker", growth_tracker_}, {"skipped_steps", skipped_}};
}

void DynamicLossScaler::load_state(const nlohmann::json& j, const std::string& source) {
  OT_REQUIRE(j.is_object() && j.contains("scale") && j["scale"].is_number() && j.contains("growth_tracker"),
             source, ": loss scaler state must have a numeric scale and growth_tracker");
  const double s = j["scale"].get<double>();
  OT_REQUIRE(s > 0 && std::isfinite(s), source, ": loss scale must be positive and finite, got ", s);
  scale_ = s;
  growth_tracker_ = j["growth_tracker"].get<int64_t>();
  skipped_ = j.value("skipped_steps", int64_t{0});
}

}  // namespace ot
