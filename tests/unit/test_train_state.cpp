// tests/unit/test_train_state.cpp: the trainer's resumable state as a unit: TrainState
// saved and loaded with the weights (infinities and NaN included), a fit continuing from a
// saved state, and a stopped fit saving where it stands.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "test_support.h"
#include "token_blocks.h"
#include "train/trainer.h"
#include "util/signals.h"

namespace ot {
namespace {

NamedTensors small_params() {
  torch::manual_seed(3);
  return {{"w", torch::randn({3, 4}).requires_grad_()}, {"b", torch::zeros({4}).requires_grad_()}};
}

void expect_same_number(double a, double b, const std::string& what) {
  if (std::isnan(a)) {
    EXPECT_TRUE(std::isnan(b)) << what;
  } else {
    EXPECT_EQ(a, b) << what;
  }
}

void expect_same_state(const TrainState& a, const TrainState& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.micro_index, b.micro_index);
  EXPECT_EQ(a.tokens, b.tokens);
  expect_same_number(a.best_metric, b.best_metric, "best_metric");
  EXPECT_EQ(a.best_step, b.best_step);
  ASSERT_EQ(a.evals.size(), b.evals.size());
  for (size_t i = 0; i < a.evals.size(); ++i) {
    ASSERT_EQ(a.evals[i].size(), b.evals[i].size()) << i;
    for (const auto& [k, v] : a.evals[i]) {
      ASSERT_TRUE(b.evals[i].count(k)) << k;
      expect_same_number(v, b.evals[i].at(k), k);
    }
  }
}

TEST(TrainState, StartsWithNothingBest) {
  const TrainState low = TrainState::start(true), high = TrainState::start(false);
  EXPECT_EQ(low.step, 0);
  EXPECT_EQ(low.micro_index, 0);
  EXPECT_EQ(low.best_step, -1);
  EXPECT_TRUE(std::isinf(low.best_metric) && low.best_metric > 0);
  EXPECT_TRUE(std::isinf(high.best_metric) && high.best_metric < 0);
  EXPECT_TRUE(low.evals.empty());
}

TEST(TrainState, SavedAndLoadedAsAUnitWithTheWeights) {
  test::TempDir tmp;
  TrainerOptions o;
  o.state_path = tmp.file("state.pt");
  NamedTensors params = small_params();
  const at::Tensor saved_w = params[0].second.detach().clone();
  {
    Trainer none(params, o);
    EXPECT_FALSE(none.load_state().has_value()) << "no file: nothing to resume";
  }
  TrainState s;
  s.step = 7;
  s.micro_index = 15;
  s.tokens = 123456789012;
  s.best_metric = 0.25;
  s.best_step = 4;
  s.evals = {{{"step", 2.0}, {"loss", 0.5}, {"ppl", INFINITY}},
             {{"step", 4.0}, {"loss", 0.25}, {"ppl", NAN}, {"delta", -INFINITY}}};
  Trainer writer(params, o);
  writer.save_state(s);
  ASSERT_TRUE(std::filesystem::exists(o.state_path));

  {
    torch::NoGradGuard ng;
    params[0].second.fill_(9.0);  // the weights move on; loading takes them back
  }
  Trainer reader(params, o);
  std::optional<TrainState> back = reader.load_state();
  ASSERT_TRUE(back.has_value());
  expect_same_state(s, *back);
  EXPECT_TRUE(torch::equal(params[0].second, saved_w));

  TrainState unevaluated = TrainState::start(true);
  unevaluated.step = 1;
  writer.save_state(unevaluated);
  back = reader.load_state();
  ASSERT_TRUE(back.has_value());
  expect_same_state(unevaluated, *back);
}

TEST(TrainState, WithoutAPathNothingIsWritten) {
  test::TempDir tmp;
  Trainer t(small_params(), TrainerOptions{});
  t.save_state(TrainState::start(true));
  EXPECT_FALSE(t.load_state().has_value());
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

// fit() continues from the saved step and data position, with the saved evaluations.
TEST(TrainState, FitContinuesFromTheSavedState) {
  at::set_num_threads(1);
  test::TempDir tmp;
  test::TokenBlocks data(8, 6, 50, 11);
  TrainerOptions o;
  o.state_path = tmp.file("state.pt");
  o.batch_size = 2;
  o.max_steps = 5;
  o.lr = 1e-2;
  NamedTensors params = small_params();
  const at::Tensor w = params[0].second;
  auto loss = [&](const Batch&, Metrics&) { return (w * w).sum(); };
  TrainState s = TrainState::start(true);
  s.step = 3;
  s.micro_index = 3;
  s.tokens = 36;
  s.evals = {{{"step", 2.0}, {"loss", 1.5}}};
  Trainer(params, o).save_state(s);

  Trainer t(params, o);
  std::vector<double> steps;
  TrainResult r = t.fit(data, loss, {}, [&](const std::string&, const Metrics& row) { steps.push_back(row.at("step")); });
  EXPECT_TRUE(r.resumed);
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.steps, 5);
  EXPECT_EQ(steps, (std::vector<double>{4.0, 5.0}));
  EXPECT_EQ(r.tokens, 36 + 2 * 2 * 6);
  ASSERT_EQ(r.evals.size(), 1u);
  EXPECT_EQ(r.evals[0].at("loss"), 1.5);
  EXPECT_FALSE(std::filesystem::exists(o.state_path)) << "a finished fit removes its state";
}

// A stop signal before a step: fit saves the state it stands at and reports the interruption.
TEST(TrainState, AStoppedFitSavesWhereItStands) {
  at::set_num_threads(1);
  test::TempDir tmp;
  test::TokenBlocks data(8, 6, 50, 11);
  TrainerOptions o;
  o.state_path = tmp.file("state.pt");
  o.batch_size = 2;
  o.grad_accum = 2;
  o.max_steps = 4;
  NamedTensors params = small_params();
  const at::Tensor w = params[0].second;
  auto loss = [&](const Batch&, Metrics&) { return (w * w).sum(); };
  Trainer t(params, o);
  TrainResult r = t.fit(data, loss, {}, [](const std::string&, const Metrics& row) {
    if (row.at("step") == 2) request_stop();
  });
  clear_stop_request();
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.steps, 2);
  std::optional<TrainState> saved = Trainer(params, o).load_state();
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->step, 2);
  EXPECT_EQ(saved->micro_index, 4);
  EXPECT_EQ(saved->tokens, 2 * 2 * 2 * 6);
}

}  // namespace
}  // namespace ot
