// tests/unit/test_gradient_alignment.cpp: the gradient alignment of offsite/gradient_alignment.h.
// The cosine against values worked out by hand; on a real pretrained model (stories260K): an
// emulator that keeps every middle block aligns exactly (cosine 1), a lossy one does not, and
// the per-block values equal the cosine of gradients taken by an ordinary backward pass on
// each model; the models' own .grad and requires_grad are left as they were.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/load.h"
#include "offsite/emulator.h"
#include "offsite/gradient_alignment.h"
#include "test_support.h"

namespace {

TEST(GradientAlignment, CosineOfGradientListsByHand) {
  auto t = [](std::vector<double> v) { return torch::tensor(v, torch::kDouble); };
  // a = (1, 2 | 2), |a| = 3; b = (2, 0 | 1), |b| = sqrt(5); <a, b> = 2 + 0 + 2 = 4.
  EXPECT_NEAR(ot::gradient_cosine({t({1, 2}), t({2})}, {t({2, 0}), t({1})}), 4.0 / (3.0 * std::sqrt(5.0)), 1e-15);
  // Orthogonal, opposite, parallel with another length.
  EXPECT_NEAR(ot::gradient_cosine({t({1, 2, 2})}, {t({2, 1, -2})}), 0.0, 1e-15);
  EXPECT_NEAR(ot::gradient_cosine({t({1, -1})}, {t({-3, 3})}), -1.0, 1e-15);
  EXPECT_NEAR(ot::gradient_cosine({t({3, 0}), t({4})}, {t({6, 0}), t({8})}), 1.0, 1e-15);
  // Matrices count element by element: (1 0; 0 1) against (1 1; 0 0): 1 / (sqrt2 * sqrt2).
  EXPECT_NEAR(ot::gradient_cosine({t({1, 0, 0, 1}).view({2, 2})}, {t({1, 1, 0, 0}).view({2, 2})}), 0.5, 1e-15);
  EXPECT_TRUE(std::isnan(ot::gradient_cosine({t({0, 0})}, {t({1, 2})})));
}

class GradientAlignmentOnAModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ot::test::TempDir();
    auto r = ot::test::convert_stories260k(dir_->file("full"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<ot::Batch> batches(int64_t n) {
    torch::manual_seed(11);
    std::vector<ot::Batch> out;
    for (int64_t i = 0; i < n; ++i) {
      ot::Batch b;
      b.input_ids = torch::randint(3, 512, {2, 24}, torch::kLong);
      b.labels = b.input_ids.clone();
      out.push_back(b);
    }
    return out;
  }
  static ot::test::TempDir* dir_;
};
ot::test::TempDir* GradientAlignmentOnAModel::dir_ = nullptr;

TEST_F(GradientAlignmentOnAModel, KeepingEveryMiddleBlockAlignsExactly) {
  ot::DecoderLM full = ot::load_model(dir_->file("full"));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 3;  // all three middle blocks
  const auto layout = ot::make_layout(5, o, ot::select_middle_blocks(3, 3, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  const ot::GradientAlignment a = ot::gradient_alignment(*bundle, *full, layout, batches(2));
  EXPECT_EQ(a.adapter_blocks, (std::vector<int64_t>{0, 4}));
  ASSERT_EQ(a.block_cosine.size(), 2u);
  for (double c : a.block_cosine) EXPECT_NEAR(c, 1.0, 1e-6);
  EXPECT_EQ(a.batches, 2);
}

TEST_F(GradientAlignmentOnAModel, EqualsTheCosineOfTwoBackwardPasses) {
  ot::DecoderLM full = ot::load_model(dir_->file("full"));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 1;
  const auto layout = ot::make_layout(5, o, ot::select_middle_blocks(3, 1, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  const auto data = batches(1);
  for (auto& p : full->parameters()) p.requires_grad_(false);  // as a frozen full model is held
  const ot::GradientAlignment a = ot::gradient_alignment(*bundle, *full, layout, data);
  for (auto& p : full->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
  for (auto& p : bundle->parameters()) EXPECT_FALSE(p.grad().defined());

  // The same gradients by backward(): bundle block 0 / 2 are original blocks 0 / 4.
  auto grads = [&](ot::DecoderLM& m, int64_t block) {
    for (auto& p : m->parameters()) {
      p.requires_grad_(true);
      p.mutable_grad() = at::Tensor();
    }
    m->eval();
    ot::causal_lm_loss(m->forward(data[0].input_ids).logits, data[0].labels).backward();
    std::vector<at::Tensor> g;
    for (auto& p : m->block(block).parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const double bottom = ot::gradient_cosine(grads(bundle, 0), grads(full, 0));
  const double top = ot::gradient_cosine(grads(bundle, 2), grads(full, 4));
  EXPECT_NEAR(a.block_cosine[0], bottom, 1e-6);
  EXPECT_NEAR(a.block_cosine[1], top, 1e-6);
  EXPECT_NEAR(a.mean_cosine, (bottom + top) / 2, 1e-6);
  // Dropping two of three middle blocks changes the bottom block's gradient.
  EXPECT_LT(bottom, 1.0 - 1e-4);
  EXPECT_GT(bottom, -1.0);
}

}  // namespace
