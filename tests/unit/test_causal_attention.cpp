// tests/unit/test_causal_attention.cpp: the fused causal attention (model/causal_attention.h)
// against the math path (compat::scaled_dot_product_attention, is_causal) computed in fp64:
// output and the gradients of q, k and v for several sequence lengths around the query block
// size, head dims, grouped-query heads, a non-default scale, inputs that are views of the
// projections' (B, T, H*D) outputs, at 1 and 2 threads; no-grad output; the same bits at 1
// and 2 threads; when attend uses it.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "model/attention.h"
#include "model/causal_attention.h"
#include "util/compat.h"

namespace {

struct Case {
  int64_t B, H, Hkv, T, D;
  double scale;  // <= 0: 1/sqrt(D)
  enum Layout { kContiguous, kProjection, kFusedQKV } layout;
  std::string name() const {
    return "B" + std::to_string(B) + " H" + std::to_string(H) + " Hkv" + std::to_string(Hkv) + " T" +
           std::to_string(T) + " D" + std::to_string(D) + " scale " + std::to_string(scale) +
           " layout " + std::to_string(int(layout));
  }
};

// Leaf tensors and the (B, heads, T, D) views of them the kernel reads.
struct Inputs {
  std::vector<at::Tensor> leaves;
  at::Tensor q, k, v;
};

// Views of `leaves` as the case's layout lays them out.
Inputs with_views(const Case& c, std::vector<at::Tensor> leaves) {
  Inputs in;
  in.leaves = std::move(leaves);
  auto heads = [&](const at::Tensor& t, int64_t h) { return t.view({c.B, c.T, h, c.D}).transpose(1, 2); };
  if (c.layout == Case::kContiguous) {
    in.q = in.leaves[0], in.k = in.leaves[1], in.v = in.leaves[2];
  } else if (c.layout == Case::kProjection) {
    in.q = heads(in.leaves[0], c.H), in.k = heads(in.leaves[1], c.Hkv), in.v = heads(in.leaves[2], c.Hkv);
  } else {
    auto parts = in.leaves[0].split_with_sizes({c.H * c.D, c.Hkv * c.D, c.Hkv * c.D}, -1);
    in.q = heads(parts[0], c.H), in.k = heads(parts[1], c.Hkv), in.v = heads(parts[2], c.Hkv);
  }
  return in;
}

// Random fp32 leaves: (B, heads, T, D) each, (B, T, heads*D) projections, or one
// (B, T, (H + 2 Hkv) D) tensor split in three as GPT-2's c_attn (row stride (H + 2 Hkv) D).
std::vector<at::Tensor> random_leaves(const Case& c) {
  torch::manual_seed(7);
  std::vector<at::Tensor> leaves;
  if (c.layout == Case::kContiguous)
    for (int64_t h : {c.H, c.Hkv, c.Hkv}) leaves.push_back(torch::randn({c.B, h, c.T, c.D}));
  else if (c.layout == Case::kProjection)
    for (int64_t h : {c.H, c.Hkv, c.Hkv}) leaves.push_back(torch::randn({c.B, c.T, h * c.D}));
  else
    leaves.push_back(torch::randn({c.B, c.T, (c.H + 2 * c.Hkv) * c.D}));
  return leaves;
}

// The same values in `dtype`, as fresh leaves that require grad.
std::vector<at::Tensor> leaves_as(const std::vector<at::Tensor>& leaves, at::ScalarType dtype) {
  std::vector<at::Tensor> out;
  for (const auto& t : leaves) out.push_back(t.detach().to(dtype).requires_grad_());
  return out;
}

// The math path with is_causal, (B, T, H*D), as attend computed it before the fused kernel.
at::Tensor math_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  auto kk = k.repeat_interleave(H / k.size(1), 1), vv = v.repeat_interleave(H / v.size(1), 1);
  auto qq = q * (scale * std::sqrt(double(D)));  // the math path scales by 1/sqrt(D)
  auto out = ot::compat::scaled_dot_product_attention(qq, kk, vv, at::Tensor(), true);
  return out.transpose(1, 2).reshape({B, T, H * D});
}

// max |a - b| / max |b|
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  auto bd = b.to(torch::kDouble);
  double scale = bd.abs().max().item<double>();
  return (a.to(torch::kDouble) - bd).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

void check_case(const Case& c) {
  SCOPED_TRACE(c.name());
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(double(c.D));
  const auto leaves = random_leaves(c);
  Inputs f = with_views(c, leaves_as(leaves, torch::kFloat));
  Inputs r = with_views(c, leaves_as(leaves, torch::kDouble));
  ASSERT_TRUE(ot::causal_attention_applies(f.q, f.k, f.v));

  at::Tensor out = ot::causal_attention_cpu(f.q, f.k, f.v, scale);
  at::Tensor ref = math_attention(r.q, r.k, r.v, scale);
  ASSERT_EQ(out.sizes(), ref.sizes());
  EXPECT_TRUE(out.is_contiguous());
  EXPECT_LT(relative_error(out, ref), 1e-5);

  torch::manual_seed(11);
  auto w = torch::randn(ref.sizes(), torch::kDouble);
  (out * w.to(torch::kFloat)).sum().backward();
  (ref * w).sum().backward();
  for (size_t i = 0; i < f.leaves.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    ASSERT_TRUE(f.leaves[i].grad().defined());
    EXPECT_LT(relative_error(f.leaves[i].grad(), r.leaves[i].grad()), 1e-5);
  }

  // Evaluation (no probabilities kept) computes the same output, bit for bit.
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(ot::causal_attention_cpu(f.q, f.k, f.v, scale), out));
  }
  EXPECT_TRUE(torch::equal(ot::causal_attention_cpu(f.q.detach(), f.k.detach(), f.v.detach(), scale), out));
}

// Runs `fn` at `n` intra-op threads, then restores the count.
template <class F>
void with_threads(int n, F fn) {
  const int before = at::get_num_threads();
  at::set_num_threads(n);
  fn();
  at::set_num_threads(before);
}

TEST(CausalAttention, MatchesMathPathOverLengthsAndHeadDims) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    with_threads(threads, [] {
      for (int64_t T : {2, 63, 64, 65, 130, 256})
        for (int64_t D : {16, 32, 64}) check_case({2, 2, 2, T, D, 0.0, Case::kContiguous});
    });
  }
}

TEST(CausalAttention, MatchesMathPathOnProjectionViewsGroupedHeadsAndScale) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    with_threads(threads, [] {
      check_case({3, 4, 4, 130, 32, 0.0, Case::kProjection});
      check_case({2, 4, 2, 130, 32, 0.0, Case::kProjection});
      check_case({2, 4, 1, 65, 16, 0.0, Case::kProjection});
      check_case({1, 4, 2, 256, 64, 0.0, Case::kContiguous});
      check_case({2, 4, 4, 65, 32, 0.37, Case::kProjection});
      check_case({2, 6, 3, 97, 16, 1.0, Case::kFusedQKV});
      check_case({8, 4, 4, 256, 32, 0.0, Case::kProjection});  // the quickstart's shape
    });
  }
}

// Each (batch, head) pair is computed whole by one thread, so the thread count changes no bit.
TEST(CausalAttention, SameBitsAtOneAndTwoThreads) {
  const Case c{4, 4, 2, 130, 32, 0.0, Case::kProjection};
  const auto leaves = random_leaves(c);
  std::vector<std::vector<at::Tensor>> results;
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      Inputs in = with_views(c, leaves_as(leaves, torch::kFloat));
      at::Tensor out = ot::causal_attention_cpu(in.q, in.k, in.v, 0.2);
      out.pow(2).sum().backward();
      results.push_back({out, in.leaves[0].grad(), in.leaves[1].grad(), in.leaves[2].grad()});
    });
  }
  for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << i;
}

TEST(CausalAttention, AttendUsesItOnlyWhereItApplies) {
  torch::manual_seed(3);
  auto q = torch::randn({2, 4, 33, 16}), k = torch::randn({2, 2, 33, 16}), v = torch::randn({2, 2, 33, 16});
  const double s = 0.25;
  EXPECT_TRUE(ot::causal_attention_applies(q, k, v));
  EXPECT_TRUE(torch::equal(ot::attend(q, k, v, at::Tensor(), s), ot::causal_attention_cpu(q, k, v, s)));
  // Where it does not apply, attend still computes the math path's result.
  EXPECT_FALSE(ot::causal_attention_applies(q.to(torch::kDouble), k.to(torch::kDouble), v.to(torch::kDouble)));
  EXPECT_FALSE(ot::causal_attention_applies(q.narrow(2, 0, 1), k.narrow(2, 0, 1), v.narrow(2, 0, 1)));
  EXPECT_FALSE(ot::causal_attention_applies(q, k.narrow(2, 0, 20), v.narrow(2, 0, 20)));
  EXPECT_FALSE(ot::causal_attention_applies(q.transpose(2, 3), k.transpose(2, 3), v.transpose(2, 3)));
  EXPECT_FALSE(ot::causal_attention_applies(q, torch::randn({2, 3, 33, 16}), torch::randn({2, 3, 33, 16})));
  {
    const bool was = ot::compat::autocast_enabled(c10::DeviceType::CPU);
    ot::compat::set_autocast_enabled(c10::DeviceType::CPU, true);
    const bool applies = ot::causal_attention_applies(q, k, v);
    ot::compat::set_autocast_enabled(c10::DeviceType::CPU, was);
    EXPECT_FALSE(applies);
  }
  auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
  EXPECT_TRUE(torch::equal(ot::attend(qd, kd, vd, at::Tensor(), s), math_attention(qd, kd, vd, s)));
  // With a bias (here the causal mask itself) attend keeps the math path.
  auto zero_bias = ot::additive_bias(ot::causal_padding_allowed(at::Tensor(), 2, 33, 0, q.options()), torch::kFloat);
  EXPECT_LT(relative_error(ot::attend(q, k, v, zero_bias, s), ot::causal_attention_cpu(q, k, v, s)), 1e-5);
}

}  // namespace
