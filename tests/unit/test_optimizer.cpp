// tests/unit/test_optimizer.cpp: the trainer's AdamW (train/optimizer.h) against
// torch::optim::AdamW: the fused fp32 update agrees to float round-off over many steps, the
// tensor-op update of other parameters (fp64, strided) is torch's bit for bit, and a state
// saved and loaded continues the run bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "train/optimizer.h"
#include "train/trainer.h"

namespace ot {
namespace {

std::vector<at::Tensor> make_params(at::ScalarType dtype) {
  torch::manual_seed(5);
  // A matrix (decayed), a vector (not decayed) and an odd size that leaves a ragged chunk.
  return {torch::randn({37, 29}, dtype).requires_grad_(), torch::randn({29}, dtype).requires_grad_(),
          torch::randn({70001}, dtype).requires_grad_()};
}

std::vector<at::Tensor> clone_params(const std::vector<at::Tensor>& ps) {
  std::vector<at::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

// The optimizer make_adamw builds, but as plain torch::optim::AdamW (two groups, decay on matrices).
std::unique_ptr<torch::optim::AdamW> torch_adamw(const std::vector<at::Tensor>& params, const TrainerOptions& o) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& p : params) (p.dim() <= 1 ? no_decay : decay).push_back(p);
  auto base = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(base).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(base).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(groups, base);
}

// Steps both optimizers on the same gradients (drawn per step) and returns the largest
// relative difference of the parameters.
double run_side_by_side(std::vector<at::Tensor>& a, torch::optim::Optimizer& oa, std::vector<at::Tensor>& b,
                        torch::optim::Optimizer& ob, int steps, int64_t seed) {
  torch::manual_seed(seed);
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < a.size(); ++i) {
      at::Tensor g = torch::randn_like(a[i]) * (s % 3 == 0 ? 1e-3 : 1.0);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    oa.step();
    ob.step();
  }
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, ((a[i] - b[i]).abs() / (b[i].abs() + 1e-3)).max().item<double>());
  return worst;
}

TrainerOptions options() {
  TrainerOptions o;
  o.lr = 3e-3;
  o.weight_decay = 0.1;
  return o;
}

TEST(FusedAdamW, Fp32AgreesWithTorchAdamWToRoundOff) {
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    auto a = make_params(at::kFloat);
    auto b = clone_params(a);
    auto fused = make_adamw(a, options());
    auto reference = torch_adamw(b, options());
    const double worst = run_side_by_side(a, *fused, b, *reference, 50, 1);
    EXPECT_LT(worst, 1e-5) << threads << " thread(s)";
    // ...and the parameters really moved (decay and steps of lr 3e-3 over 50 steps).
    auto start = make_params(at::kFloat);
    EXPECT_GT((a[0] - start[0]).abs().max().item<double>(), 0.05);
  }
}

TEST(FusedAdamW, OtherParametersTakeTorchsUpdateBitForBit) {
  auto a = make_params(at::kDouble);  // fp64: not fused
  auto b = clone_params(a);
  auto fused = make_adamw(a, options());
  auto reference = torch_adamw(b, options());
  EXPECT_EQ(run_side_by_side(a, *fused, b, *reference, 7, 2), 0.0);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << i;
}

TEST(FusedAdamW, SavedStateContinuesBitForBit) {
  auto straight = make_params(at::kFloat);
  auto resumed = clone_params(straight);
  auto o1 = make_adamw(straight, options());
  auto o2 = make_adamw(resumed, options());
  run_side_by_side(straight, *o1, resumed, *o2, 5, 3);
  // Save o2's state, build a fresh optimizer over the same tensors and load it.
  std::ostringstream saved;
  {
    torch::serialize::OutputArchive ar;
    o2->save(ar);
    ar.save_to(saved);
  }
  auto o3 = make_adamw(resumed, options());
  {
    std::istringstream in(saved.str());
    torch::serialize::InputArchive ar;
    ar.load_from(in);
    o3->load(ar);
  }
  run_side_by_side(straight, *o1, resumed, *o3, 6, 4);
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(at::equal(straight[i], resumed[i])) << i;
}

}  // namespace
}  // namespace ot
