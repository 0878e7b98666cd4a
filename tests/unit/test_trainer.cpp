// tests/unit/test_trainer.cpp: the training loop. Schedules match transformers' formulas;
// the sampler is deterministic, disjoint across ranks and covers the data; training lowers
// the loss; and a run interrupted mid-way and resumed from its state file ends with
// bit-identical parameters to an uninterrupted run (CPU, fixed threads, LoRA dropout on,
// so the RNG state must be restored too).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <set>

#include "data/sampler.h"
#include "model/decoder_lm.h"
#include "model/load.h"
#include "model/peft.h"
#include "test_support.h"
#include "token_blocks.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/signals.h"

namespace {

// Fixed random token blocks: a tiny memorisation task.
class RandomBlocks : public ot::test::TokenBlocks {
 public:
  RandomBlocks(int64_t n, int64_t T, int64_t vocab) : TokenBlocks(n, T, vocab, 123) {}
};

ot::NamedTensors trainable(ot::DecoderLM& m) {
  ot::NamedTensors out;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

TEST(Schedule, MatchesTransformersFormulas) {
  ot::LrSchedule lin{"linear", 1.0, 10, 110};
  EXPECT_DOUBLE_EQ(lin.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(lin.factor(5), 0.5);
  EXPECT_DOUBLE_EQ(lin.factor(10), 1.0);
  EXPECT_DOUBLE_EQ(lin.factor(60), 0.5);
  EXPECT_DOUBLE_EQ(lin.factor(110), 0.0);
  ot::LrSchedule cos{"cosine", 1.0, 0, 100};
  EXPECT_DOUBLE_EQ(cos.factor(0), 1.0);
  EXPECT_NEAR(cos.factor(50), 0.5, 1e-12);
  EXPECT_NEAR(cos.factor(100), 0.0, 1e-12);
  ot::LrSchedule c{"constant", 2.0, 4, 100};
  EXPECT_DOUBLE_EQ(c.lr(2), 1.0);
  EXPECT_DOUBLE_EQ(c.lr(50), 2.0);
  EXPECT_THROW(ot::check_schedule_kind("poly", "--schedule"), ot::Error);
}

TEST(Sampler, DeterministicDisjointAndCovering) {
  ot::SamplerOptions o;
  o.num_examples = 23;
  o.batch_size = 3;
  o.world_size = 2;
  o.seed = 7;
  std::vector<ot::EpochSampler> ranks;
  for (int r = 0; r < 2; ++r) {
    o.rank = r;
    ranks.emplace_back(o);
  }
  EXPECT_EQ(ranks[0].batches_per_epoch(), 4);  // ceil(23 / 6)
  std::multiset<int64_t> seen;
  for (int64_t b = 0; b < 4; ++b)
    for (auto& s : ranks)
      for (int64_t i : s.batch(0, b)) seen.insert(i);
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 23u) << "every example exactly once";
  EXPECT_EQ(ranks[0].permutation(1), ot::EpochSampler(o).permutation(1)) << "same seed, same order";
  EXPECT_NE(ranks[0].permutation(0), ranks[0].permutation(1)) << "epochs reshuffle";
  o.drop_last = true;
  EXPECT_EQ(ot::EpochSampler(o).batches_per_epoch(), 3);
}

TEST(Trainer, LowersTheLoss) {
  at::set_num_threads(1);
  ot::DecoderLM m = ot::load_model(ot::test::shared_path("fixtures/hf-parity/opt"));
  ot::set_trainable(m, {0, 1, 2, 3}, true, {});
  RandomBlocks data(8, 16, 1000);
  ot::TrainerOptions o;
  o.lr = 3e-3;
  o.batch_size = 4;
  o.epochs = 15;
  o.schedule = "constant";
  ot::Trainer t(trainable(m), o);
  t.set_mode_callback([&](bool train) { m->train(train); });
  std::vector<double> losses;
  auto r = t.fit(data, [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels); },
                 {}, [&](const std::string&, const ot::Metrics& row) { losses.push_back(row.at("loss")); });
  EXPECT_EQ(r.steps, 30);
  ASSERT_EQ(losses.size(), 30u);
  EXPECT_LT(losses.back(), 0.5 * losses.front()) << losses.front() << " -> " << losses.back();
}

TEST(Trainer, ResumeAfterInterruptionIsBitIdentical) {
  at::set_num_threads(1);
  ot::test::TempDir tmp;
  RandomBlocks data(10, 12, 1000);
  auto make = [&] {
    ot::DecoderLM m = ot::load_model(ot::test::shared_path("fixtures/hf-parity/gpt2"));
    ot::PeftOptions p;
    p.method = "lora";
    p.lora_dropout = 0.1;  // consumes the RNG: resume must restore it
    torch::manual_seed(5);
    ot::apply_peft(m, {0, 3}, p);
    ot::set_trainable(m, {0, 3}, false, p);
    return m;
  };
  ot::TrainerOptions o;
  o.lr = 1e-3;
  o.batch_size = 3;
  o.grad_accum = 2;
  o.epochs = 3;
  o.schedule = "cosine";
  o.warmup_steps = 2;
  o.eval_every = 2;
  o.weight_decay = 0.1;
  auto loss_for = [](ot::DecoderLM& m) {
    return [&m](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels); };
  };
  auto eval_for = [&](ot::DecoderLM& m) {
    return [&m, &data]() {
      auto b = data.batch({0, 1, 2});
      return ot::Metrics{{"loss", ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels).item<double>()}};
    };
  };

  // Uninterrupted reference.
  torch::manual_seed(99);
  ot::DecoderLM ref = make();
  ot::Trainer tr(trainable(ref), o);
  tr.set_mode_callback([&](bool t) { ref->train(t); });
  auto rr = tr.fit(data, loss_for(ref), eval_for(ref));
  EXPECT_EQ(rr.steps, 6);

  // Interrupted (as if SIGUSR1 arrived) after step 1, before any evaluation (nothing best
  // yet), and after step 3, then resumed by a new process state.
  o.state_path = tmp.file("state.pt");
  for (int stop_at : {1, 3}) {
    SCOPED_TRACE("stopped after step " + std::to_string(stop_at));
    torch::manual_seed(99);
    ot::DecoderLM a = make();
    ot::Trainer ta(trainable(a), o);
    ta.set_mode_callback([&](bool t) { a->train(t); });
    auto ra = ta.fit(data, loss_for(a), eval_for(a), [stop_at](const std::string& curve, const ot::Metrics& row) {
      if (curve == "train" && row.at("step") == stop_at) ot::request_stop();
    });
    ot::clear_stop_request();
    EXPECT_TRUE(ra.interrupted);
    EXPECT_EQ(ra.steps, stop_at);
    ASSERT_TRUE(std::filesystem::exists(o.state_path));

    torch::manual_seed(1234);  // a fresh process would not share the RNG state
    ot::DecoderLM b = make();
    ot::Trainer tb(trainable(b), o);
    tb.set_mode_callback([&](bool t) { b->train(t); });
    auto rb = tb.fit(data, loss_for(b), eval_for(b));
    EXPECT_TRUE(rb.resumed);
    EXPECT_EQ(rb.steps, 6);
    EXPECT_EQ(rb.best_step, rr.best_step);
    EXPECT_EQ(rb.best_metric, rr.best_metric);
    auto pr = ref->named_parameters(true), pb = b->named_parameters(true);
    for (auto& item : pr) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    EXPECT_FALSE(std::filesystem::exists(o.state_path)) << "a finished run removes its state";
  }
}

// A loss that turns NaN stops training with the stage and the step named, after saving the
// state of the last good step (which a later fit resumes from).
TEST(Trainer, NonFiniteLossStopsWithTheStepAndSavesTheState) {
  at::set_num_threads(1);
  ot::test::TempDir tmp;
  RandomBlocks data(8, 12, 1000);
  ot::DecoderLM m = ot::load_model(ot::test::shared_path("fixtures/hf-parity/opt"));
  ot::set_trainable(m, {0, 1, 2, 3}, true, {});
  ot::TrainerOptions o;
  o.lr = 1e-3;
  o.batch_size = 2;
  o.max_steps = 5;
  o.label = "distill";
  o.state_path = tmp.file("state.pt");
  int calls = 0;
  auto loss = [&](const ot::Batch& b, ot::Metrics&) {
    at::Tensor l = ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels);
    return ++calls == 3 ? l * std::numeric_limits<double>::quiet_NaN() : l;  // step 3's loss
  };
  ot::Trainer t(trainable(m), o);
  std::string message;
  try {
    t.fit(data, loss);
  } catch (const ot::Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("distill: loss became NaN at step 3"), std::string::npos) << message;
  EXPECT_NE(message.find("saved in " + o.state_path), std::string::npos) << message;
  ASSERT_TRUE(std::filesystem::exists(o.state_path));
  ot::Trainer again(trainable(m), o);
  auto r = again.fit(data, loss);  // calls is past 3: finite from here
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.steps, 5);
  EXPECT_EQ(calls, 3 + 3) << "steps 3, 4 and 5 run again after the resume from step 2";
}

}  // namespace
