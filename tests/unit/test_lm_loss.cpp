// tests/unit/test_lm_loss.cpp: the fused causal-LM loss (model/lm_loss.h) for fp32 CPU logits
// against cross_entropy on the shifted rows computed in fp64: mean and sum, ignored labels
// (-100) anywhere, vocabularies around the row loops' lane width and a GPT-sized one, the
// logits' gradient, at 1 and 2 threads with the same bits; no-grad use, a label outside the
// vocabulary, non-finite logits, and fp64 / strided logits taking the reference path.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "model/lm_loss.h"

namespace {

// cross_entropy of logits[:, :-1] against labels[:, 1:] in fp64, as transformers computes it.
at::Tensor reference_loss(const at::Tensor& logits, const at::Tensor& labels, ot::LossReduction how) {
  const int64_t V = logits.size(2), T = logits.size(1);
  auto x = logits.narrow(1, 0, T - 1).reshape({-1, V}).to(torch::kDouble);
  auto y = labels.narrow(1, 1, T - 1).reshape({-1});
  auto options = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100);
  if (how == ot::LossReduction::kSum) options.reduction(torch::kSum);
  return torch::nn::functional::cross_entropy(x, y, options);
}

struct Case {
  int64_t B, T, V;
  double ignored;  // share of labels set to -100
  std::string name() const {
    return "B" + std::to_string(B) + " T" + std::to_string(T) + " V" + std::to_string(V) + " ignored " +
           std::to_string(ignored);
  }
};

struct Inputs {
  at::Tensor logits, labels;
};

Inputs random_inputs(const Case& c) {
  torch::manual_seed(11);
  Inputs in;
  in.logits = (torch::randn({c.B, c.T, c.V}) * 3.0).set_requires_grad(true);
  in.labels = torch::randint(0, c.V, {c.B, c.T}, torch::kLong);
  in.labels.masked_fill_(torch::rand({c.B, c.T}) < c.ignored, -100);
  return in;
}

TEST(LMLoss, MatchesShiftedCrossEntropyInFp64WithGradients) {
  const Case cases[] = {{1, 2, 1, 0.0},     {2, 5, 7, 0.0},     {3, 9, 8, 0.3},   {2, 17, 37, 0.5},
                        {4, 33, 2048, 0.1}, {1, 64, 50272, 0.0}, {2, 6, 129, 1.0}};
  for (const Case& c : cases)
    for (auto how : {ot::LossReduction::kMean, ot::LossReduction::kSum})
      for (int threads : {1, 2}) {
        SCOPED_TRACE(c.name() + (how == ot::LossReduction::kSum ? " sum" : " mean") + " threads " +
                     std::to_string(threads));
        at::set_num_threads(threads);
        Inputs in = random_inputs(c);
        at::Tensor loss = ot::causal_lm_loss(in.logits, in.labels, how);
        EXPECT_EQ(loss.scalar_type(), torch::kFloat);
        EXPECT_EQ(loss.dim(), 0);
        at::Tensor ref_leaf = in.logits.detach().to(torch::kDouble).set_requires_grad(true);
        at::Tensor ref = reference_loss(ref_leaf, in.labels, how);
        if (c.ignored >= 1.0 && how == ot::LossReduction::kMean) {
          EXPECT_TRUE(std::isnan(loss.item<double>()));  // nothing scored: 0 / 0, as cross_entropy
          continue;
        }
        EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 2e-6 * std::max(1.0, std::abs(ref.item<double>())));
        loss.backward();
        ref.backward();
        const double err = (in.logits.grad().to(torch::kDouble) - ref_leaf.grad()).abs().max().item<double>();
        const double size = ref_leaf.grad().abs().max().item<double>();
        EXPECT_LE(err, 1e-6 * std::max(size, 1e-30)) << "largest gradient " << size;
        // the last position predicts nothing: its gradient is exactly zero
        EXPECT_EQ(in.logits.grad().select(1, c.T - 1).abs().max().item<float>(), 0.0f);
      }
  at::set_num_threads(1);
}

TEST(LMLoss, SameBitsOnOneAndTwoThreads) {
  const Case c{3, 40, 1000, 0.2};
  at::Tensor loss[2], grad[2];
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    Inputs in = random_inputs(c);
    loss[threads - 1] = ot::causal_lm_loss(in.logits, in.labels);
    loss[threads - 1].backward();
    grad[threads - 1] = in.logits.grad();
  }
  at::set_num_threads(1);
  EXPECT_TRUE(torch::equal(loss[0], loss[1]));
  EXPECT_TRUE(torch::equal(grad[0], grad[1]));
}

TEST(LMLoss, WithoutGradientTheSameValue) {
  Inputs in = random_inputs({2, 12, 300, 0.25});
  at::Tensor with = ot::causal_lm_loss(in.logits, in.labels, ot::LossReduction::kSum);
  at::Tensor without;
  {
    torch::NoGradGuard ng;
    without = ot::causal_lm_loss(in.logits, in.labels, ot::LossReduction::kSum);
  }
  EXPECT_FALSE(without.requires_grad());
  EXPECT_TRUE(torch::equal(with.detach(), without));
}

TEST(LMLoss, LabelOutsideTheVocabularyIsAnError) {
  Inputs in = random_inputs({1, 4, 10, 0.0});
  in.labels[0][2] = 10;
  try {
    ot::causal_lm_loss(in.logits, in.labels);
    FAIL() << "a label of 10 with 10 logits was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 10 at (0, 2) is outside the vocabulary [0, 10)"), std::string::npos)
        << e.what();
  }
  in.labels[0][2] = -1;
  EXPECT_THROW(ot::causal_lm_loss(in.logits, in.labels), c10::Error);
  in.labels[0][0] = 99;  // the first label is never a target
  in.labels[0][2] = 3;
  EXPECT_NO_THROW(ot::causal_lm_loss(in.logits, in.labels));
}

TEST(LMLoss, NonFiniteLogitsGiveANonFiniteLoss) {
  Inputs in = random_inputs({1, 5, 20, 0.0});
  at::Tensor x = in.logits.detach().clone();
  x[0][1][7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ot::causal_lm_loss(x, in.labels).item<double>()));
  // a NaN in the ignored last row leaves the loss alone, as slicing it off would
  x = in.logits.detach().clone();
  x[0][4][3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isfinite(ot::causal_lm_loss(x, in.labels).item<double>()));
}

TEST(LMLoss, OtherLogitsTakeTheReferencePath) {
  Inputs in = random_inputs({2, 7, 33, 0.2});
  // fp64 logits: scored in fp32 after conversion, as before the fused path existed
  at::Tensor d = in.logits.detach().to(torch::kDouble).set_requires_grad(true);
  at::Tensor loss = ot::causal_lm_loss(d, in.labels);
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);
  EXPECT_NEAR(loss.item<double>(), reference_loss(d.detach(), in.labels, ot::LossReduction::kMean).item<double>(), 1e-5);
  loss.backward();
  EXPECT_EQ(d.grad().scalar_type(), torch::kDouble);
  // a strided view (every other vocabulary entry): same value as its contiguous copy's
  at::Tensor wide = torch::randn({2, 7, 66});
  at::Tensor view = wide.slice(2, 0, 66, 2);
  ASSERT_FALSE(view.is_contiguous());
  EXPECT_NEAR(ot::causal_lm_loss(view, in.labels).item<double>(),
              ot::causal_lm_loss(view.contiguous(), in.labels).item<double>(), 1e-6);
  // shapes that are not (B, T, V) and (B, T)
  EXPECT_THROW(ot::causal_lm_loss(wide, in.labels.narrow(1, 0, 6)), c10::Error);
}

}  // namespace
