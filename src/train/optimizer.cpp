// train/optimizer.cpp: see optimizer.h.
#include "train/optimizer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "train/trainer.h"
#include "util/compat.h"

namespace ot {

namespace {

// The scalars of one parameter's update at step t (t >= 1), as AdamW computes them in double.
struct AdamWStep {
  double decay;      // 1 - lr * weight_decay (1: none)
  double beta1, beta2;
  double step_size;  // lr / (1 - beta1^t)
  double bias2_sqrt; // sqrt(1 - beta2^t)
  double eps;
};

AdamWStep scalars_of(const torch::optim::AdamWOptions& o, int64_t t) {
  AdamWStep s;
  s.decay = o.weight_decay() != 0 ? 1 - o.lr() * o.weight_decay() : 1.0;
  s.beta1 = std::get<0>(o.betas());
  s.beta2 = std::get<1>(o.betas());
  s.step_size = o.lr() / (1 - std::pow(s.beta1, double(t)));
  s.bias2_sqrt = std::sqrt(1 - std::pow(s.beta2, double(t)));
  s.eps = o.eps();
  return s;
}

// Elements [begin, end) of p, g, m, v, in the tensor-op update's order of operations in fp32:
// p *= decay; m = m * b1 + (1 - b1) * g; v = v * b2 + (1 - b2) * g * g;
// p += -step_size * m / (sqrt(v) / sqrt(bias2) + eps). A function of its own with restrict
// pointers, so the compiler vectorises it whichever way at::parallel_for calls it.
struct FusedScalars {
  float decay, b1, b2, a1, a2, neg_step, bias2_sqrt, eps;
};

__attribute__((noinline)) void update_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                                            float* __restrict v, int64_t begin, int64_t end, const FusedScalars c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.b1 + c.a1 * gi;
    const float vi = v[i] * c.b2 + c.a2 * (gi * gi);
    const float denom = __builtin_sqrtf(vi) / c.bias2_sqrt + c.eps;
    p[i] = p[i] * c.decay + c.neg_step * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

void fused_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  const FusedScalars c{float(s.decay), float(s.beta1), float(s.beta2), float(1 - s.beta1), float(1 - s.beta2),
                       float(-s.step_size), float(s.bias2_sqrt), float(s.eps)};
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) { update_range(p, g, m, v, begin, end, c); });
}

bool fusable(const at::Tensor& p, const at::Tensor& g, const torch::optim::AdamWParamState& st) {
  auto plain = [&](const at::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
           t.layout() == at::kStrided && t.sizes() == p.sizes();
  };
  return plain(p) && plain(g) && plain(st.exp_avg()) && plain(st.exp_avg_sq());
}

// torch::optim::AdamW's update for the parameters the fused loop does not take.
void tensor_update(at::Tensor& p, const at::Tensor& g, torch::optim::AdamWParamState& st,
                   const torch::optim::AdamWOptions& o, const AdamWStep& s) {
  if (o.weight_decay() != 0) p.mul_(s.decay);
  st.exp_avg().mul_(s.beta1).add_(g, 1 - s.beta1);
  st.exp_avg_sq().mul_(s.beta2).addcmul_(g, g, 1 - s.beta2);
  at::Tensor denom;
  if (o.amsgrad()) {
    at::maximum_out(st.max_exp_avg_sq(), st.max_exp_avg_sq(), st.exp_avg_sq());
    denom = (st.max_exp_avg_sq().sqrt() / s.bias2_sqrt).add_(s.eps);
  } else {
    denom = (st.exp_avg_sq().sqrt() / s.bias2_sqrt).add_(s.eps);
  }
  p.addcdiv_(st.exp_avg(), denom, -s.step_size);
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const at::Tensor& g = p.grad();
      TORCH_CHECK(!g.is_sparse(), "AdamW does not support sparse gradients");
      auto key = compat::optimizer_state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        if (o.amsgrad()) fresh->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.step(st.step() + 1);
      const AdamWStep s = scalars_of(o, st.step());
      if (!o.amsgrad() && fusable(p, g, st))
        fused_update(p.data_ptr<float>(), g.data_ptr<float>(), st.exp_avg().data_ptr<float>(),
                     st.exp_avg_sq().data_ptr<float>(), p.numel(), s);
      else
        tensor_update(p, g, st, o, s);
    }
  }
  return loss;
}

void drop_gradients(torch::optim::Optimizer& opt) {
  for (auto& group : opt.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) p.mutable_grad().reset();
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, const TrainerOptions& o,
                                                const std::vector<double>& lr_scale) {
  TORCH_INTERNAL_ASSERT(lr_scale.empty() || lr_scale.size() == params.size());
  // Groups in order of each learning-rate scale's first appearance, matrices before vectors.
  std::vector<double> scales;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double s = lr_scale.empty() ? 1.0 : lr_scale[i];
    if (std::find(scales.begin(), scales.end(), s) == scales.end()) scales.push_back(s);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto base = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps);
  for (double s : scales) {
    std::vector<at::Tensor> decay, no_decay;
    for (std::size_t i = 0; i < params.size(); ++i)
      if ((lr_scale.empty() ? 1.0 : lr_scale[i]) == s) (params[i].dim() <= 1 ? no_decay : decay).push_back(params[i]);
    if (!decay.empty())
      groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                     torch::optim::AdamWOptions(base).lr(o.lr * s).weight_decay(o.weight_decay)));
    if (!no_decay.empty())
      groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                        torch::optim::AdamWOptions(base).lr(o.lr * s).weight_decay(0.0)));
  }
  return std::make_unique<FusedAdamW>(groups, base);
}

}  // namespace ot
