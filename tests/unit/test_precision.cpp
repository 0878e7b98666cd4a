// tests/unit/test_precision.cpp: the GPU path's pieces that a CPU can prove. Mixed
// precision options and their errors; autocast guards (nesting, restore); dynamic loss
// scaling (skip and back off on inf/NaN, growth, state round trip); activation
// checkpointing (gradients bit-identical to a plain backward, dropout included, and with a
// frozen input); bf16 training that lowers the loss and resumes bit-exactly with
// checkpointing on; one GPU per rank from the launcher's local rank; model FLOPs per token.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <filesystem>

#include "model/activation_checkpoint.h"
#include "model/decoder_lm.h"
#include "model/flops.h"
#include "model/load.h"
#include "model/peft.h"
#include "model/precision.h"
#include "test_support.h"
#include "token_blocks.h"
#include "train/loss_scaler.h"
#include "train/trainer.h"
#include "util/compat.h"
#include "util/device.h"
#include "util/error.h"
#include "util/signals.h"

namespace {

using ot::test::shared_path;

ot::NamedTensors trainable(ot::DecoderLM& m) {
  ot::NamedTensors out;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ot::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Precision, ParsesAndRefusesWhatCannotRun) {
  EXPECT_EQ(ot::parse_precision("bf16"), ot::Precision::kBf16);
  EXPECT_EQ(ot::parse_precision("float16"), ot::Precision::kFp16);
  EXPECT_EQ(ot::precision_name(ot::parse_precision("fp32")), "fp32");
  EXPECT_NE(error_of([] { ot::parse_precision("fp8", "runtime.precision"); }).find("runtime.precision: 'fp8' is not a precision"),
            std::string::npos);
  const c10::Device cpu(c10::kCPU);
  EXPECT_NE(error_of([&] { ot::check_precision(ot::Precision::kFp16, cpu, c10::kFloat); }).find("fp16 mixed precision needs a CUDA device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ot::check_precision(ot::Precision::kBf16, cpu, c10::kBFloat16); }).find("keeps fp32 master weights"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { ot::check_precision(ot::Precision::kBf16, cpu, c10::kFloat); }), "");
  EXPECT_EQ(error_of([&] { ot::check_precision(ot::Precision::kFp32, cpu, c10::kBFloat16); }), "") << "pure bf16 weights";
}

TEST(Precision, AutocastGuardNestsAndRestores) {
  const c10::Device cpu(c10::kCPU);
  const auto cpu_type = c10::DeviceType::CPU;
  ASSERT_FALSE(ot::compat::autocast_enabled(cpu_type));
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    ot::AutocastGuard outer(cpu, ot::Precision::kBf16);
    EXPECT_TRUE(ot::compat::autocast_enabled(cpu_type));
    EXPECT_EQ(ot::compute_dtype(cpu, c10::kFloat), c10::kBFloat16);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      ot::AutocastGuard inner(cpu, ot::Precision::kFp32);  // fp32 leaves the state alone
      EXPECT_TRUE(ot::compat::autocast_enabled(cpu_type));
    }
    EXPECT_TRUE(ot::compat::autocast_enabled(cpu_type));
  }
  EXPECT_FALSE(ot::compat::autocast_enabled(cpu_type));
  EXPECT_EQ(ot::compute_dtype(cpu, c10::kFloat), c10::kFloat);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(LossScaler, SkipsAndBacksOffOnOverflowAndGrowsAfterAnInterval) {
  ot::LossScalerOptions o;
  o.init_scale = 1024.0;
  o.growth_interval = 3;
  ot::DynamicLossScaler s(o);
  auto w = torch::zeros({3}, torch::requires_grad());
  w.mutable_grad() = torch::tensor({1024.0f, -2048.0f, 512.0f});
  EXPECT_FALSE(s.unscale_and_check({w}));
  EXPECT_TRUE(torch::equal(w.grad(), torch::tensor({1.0f, -2.0f, 0.5f}))) << "divided by the scale";
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 1024.0);
  s.update(false);
  EXPECT_EQ(s.scale(), 2048.0) << "grows after growth_interval good steps";
  EXPECT_EQ(s.growth_tracker(), 0);
  for (float bad : {INFINITY, NAN}) {
    w.mutable_grad() = torch::tensor({1.0f, bad, 1.0f});
    EXPECT_TRUE(s.unscale_and_check({w})) << bad;
    s.update(true);
  }
  EXPECT_EQ(s.scale(), 512.0) << "halved on each overflow";
  EXPECT_EQ(s.skipped_steps(), 2);
  s.update(false);
  ot::DynamicLossScaler t(o);
  t.load_state(s.state(), "state.pt");
  EXPECT_EQ(t.scale(), s.scale());
  EXPECT_EQ(t.growth_tracker(), 1);
  EXPECT_EQ(t.skipped_steps(), 2);
  EXPECT_NE(error_of([&] { t.load_state({{"scale", -1.0}, {"growth_tracker", 0}}, "state.pt"); }).find("state.pt: loss scale"),
            std::string::npos);
  EXPECT_EQ(s.scale_loss(torch::tensor(2.0)).item<double>(), 1024.0);
}

// A model whose dropout is on: the recomputation must replay the same masks.
ot::DecoderLM dropout_model() {
  ot::DecoderLM m = ot::load_model(shared_path("fixtures/hf-parity/gpt2"));
  ot::PeftOptions p;
  p.method = "lora";
  p.lora_dropout = 0.3;
  torch::manual_seed(3);
  ot::apply_peft(m, {0, 1, 2, 3}, p);
  ot::set_trainable(m, {1, 2, 3}, true, p);  // block 0 frozen: block 1's input needs no grad
  m->train();
  return m;
}

std::map<std::string, at::Tensor> grads_after_backward(ot::DecoderLM& m, bool checkpoint, const at::Tensor& ids) {
  m->set_activation_checkpointing(checkpoint);
  for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
  torch::manual_seed(77);
  auto loss = ot::causal_lm_loss(m->forward(ids).logits, ids);
  loss.backward();
  std::map<std::string, at::Tensor> g;
  for (auto& item : m->named_parameters(true))
    if (item.value().grad().defined()) g[item.key()] = item.value().grad().clone();
  return g;
}

TEST(ActivationCheckpointing, GradientsAreBitIdenticalToAPlainBackward) {
  at::set_num_threads(1);
  ot::DecoderLM m = dropout_model();
  auto ids = torch::randint(0, 1000, {2, 12}, torch::kLong);
  auto plain = grads_after_backward(m, false, ids);
  auto ckpt = grads_after_backward(m, true, ids);
  ASSERT_FALSE(plain.empty());
  ASSERT_EQ(plain.size(), ckpt.size()) << "every trainable tensor gets its gradient through the recomputation";
  for (auto& [k, g] : plain) EXPECT_TRUE(torch::equal(g, ckpt.at(k))) << k;
  // The dropout masks were replayed, not redrawn: a different seed gives other gradients.
  m->set_activation_checkpointing(false);
  torch::manual_seed(78);
  for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
  ot::causal_lm_loss(m->forward(ids).logits, ids).backward();
  bool differs = false;
  for (auto& item : m->named_parameters(true))
    if (item.value().grad().defined()) differs = differs || !torch::equal(item.value().grad(), plain.at(item.key()));
  EXPECT_TRUE(differs) << "dropout is on, so the check above is not vacuous";
}

TEST(ActivationCheckpointing, KeepsOnlyBlockInputsAlive) {
  // Checkpointing applies to training passes only: in eval mode or without grad the model
  // runs as usual, and outputs are identical either way.
  ot::DecoderLM m = ot::load_model(shared_path("fixtures/hf-parity/llama"));
  auto ids = torch::randint(0, 1000, {1, 9}, torch::kLong);
  m->set_activation_checkpointing(true);
  m->train();
  auto with = m->forward(ids).logits;
  EXPECT_TRUE(with.requires_grad());
  m->set_activation_checkpointing(false);
  auto without = m->forward(ids).logits;
  EXPECT_TRUE(torch::equal(with, without));
  auto fn = [](const at::Tensor& x) { return x * 2; };
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(ot::checkpointed(fn, torch::ones({2})), torch::full({2}, 2.0)));
}

TEST(Trainer, Bf16WithCheckpointingLowersTheLossAndResumesBitExactly) {
  at::set_num_threads(1);
  ot::test::TempDir tmp;
  ot::test::TokenBlocks data(10, 12, 1000, 123);
  ot::TrainerOptions o;
  o.lr = 2e-3;
  o.batch_size = 2;
  o.epochs = 3;
  o.schedule = "constant";
  o.precision = ot::Precision::kBf16;
  o.checkpoint_activations = true;
  auto run = [&](ot::DecoderLM& m, std::vector<double>* losses, int stop_at) {
    m->set_activation_checkpointing(o.checkpoint_activations);
    ot::Trainer t(trainable(m), o);
    t.set_mode_callback([&](bool train) { m->train(train); });
    auto r = t.fit(data, [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels); },
                   {}, [&](const std::string&, const ot::Metrics& row) {
                     if (losses) losses->push_back(row.at("loss"));
                     if (row.at("step") == stop_at) ot::request_stop();
                   });
    ot::clear_stop_request();
    return r;
  };
  torch::manual_seed(99);
  ot::DecoderLM ref = dropout_model();
  std::vector<double> losses;
  auto rr = run(ref, &losses, -1);
  ASSERT_EQ(rr.steps, 15);
  EXPECT_LT(losses.back(), losses.front()) << losses.front() << " -> " << losses.back();
  EXPECT_GT(rr.device_seconds, 0.0);
  EXPECT_EQ(rr.peak_device_memory_mib, 0.0) << "no GPU memory on the CPU";

  o.state_path = tmp.file("state.pt");
  torch::manual_seed(99);
  ot::DecoderLM a = dropout_model();
  EXPECT_TRUE(run(a, nullptr, 7).interrupted);
  ASSERT_TRUE(std::filesystem::exists(o.state_path));
  {  // The state remembers its precision: resuming with another is refused.
    ot::TrainerOptions other = o;
    other.precision = ot::Precision::kFp32;
    torch::manual_seed(1);
    ot::DecoderLM c = dropout_model();
    ot::Trainer t(trainable(c), other);
    std::string err = error_of([&] {
      t.fit(data, [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(c->forward(b.input_ids).logits, b.labels); });
    });
    EXPECT_NE(err.find("written with precision bf16 but this run uses fp32"), std::string::npos) << err;
  }
  torch::manual_seed(1234);
  ot::DecoderLM b = dropout_model();
  auto rb = run(b, nullptr, -1);
  EXPECT_TRUE(rb.resumed);
  auto pr = ref->named_parameters(true), pb = b->named_parameters(true);
  for (auto& item : pr) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

TEST(Trainer, Fp16OnTheCpuIsRefusedUpFront) {
  ot::DecoderLM m = ot::load_model(shared_path("fixtures/hf-parity/opt"));
  ot::TrainerOptions o;
  o.precision = ot::Precision::kFp16;
  o.label = "finetune";
  EXPECT_NE(error_of([&] { ot::Trainer t(trainable(m), o); }).find("finetune: precision: fp16 mixed precision needs a CUDA device"),
            std::string::npos);
}

TEST(RankDevice, OneGpuPerRankFromTheLocalRank) {
  using LR = std::optional<std::pair<std::string, int>>;
  EXPECT_EQ(ot::cuda_index_for_rank(std::nullopt, 8), 0);
  EXPECT_EQ(ot::cuda_index_for_rank(LR({"OMPI_COMM_WORLD_LOCAL_RANK", 3}), 8), 3);
  EXPECT_EQ(ot::cuda_index_for_rank(LR({"SLURM_LOCALID", 5}), 1), 0) << "a GPU bound to the task";
  std::string err = error_of([] { ot::cuda_index_for_rank(LR({"SLURM_LOCALID", 4}), 4); });
  EXPECT_NE(err.find("this rank (SLURM_LOCALID=4) has no GPU of its own: only 4 are visible"), std::string::npos) << err;
  err = error_of([] { ot::cuda_index_for_rank(LR({"SLURM_LOCALID", 0}), 0); });
  EXPECT_NE(err.find("no CUDA device is visible"), std::string::npos) << err;
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x1", 1);
  err = error_of([] { ot::local_rank_from_env(); });
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_NE(err.find("$OMPI_COMM_WORLD_LOCAL_RANK: expected a local rank"), std::string::npos) << err;
}

TEST(Flops, FullTrainingIsThreeForwardsAndFrozenPartsCostLess) {
  ot::DecoderLM m = ot::load_model(shared_path("fixtures/hf-parity/opt"));  // 4 blocks, C 64, V 1000, ffn 256
  const int64_t T = 16;
  // Per block: q, k, v, out (64 x 64) + fc1, fc2 (64 x 256): 2 * (4 * 4096 + 2 * 16384) = 98304,
  // plus attention 4 * T * C = 4096. Head: 2 * 64 * 1000.
  const double block = 98304.0 + 4096.0, head = 128000.0;
  EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(m, T), 4 * block + head);
  for (auto& p : m->parameters()) p.set_requires_grad(true);
  EXPECT_DOUBLE_EQ(ot::training_flops_per_token(m, T), 3 * (4 * block + head) - 4 * 4096.0)
      << "attention's products have no weights: no weight gradients";
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  ot::set_trainable(m, {3}, false, {});
  // Forward everywhere, activation gradients from block 3 up (block 3 and the head), weight
  // gradients of block 3's matrices only.
  EXPECT_DOUBLE_EQ(ot::training_flops_per_token(m, T), (4 * block + head) + (block + head) + 98304.0);
}

}  // namespace
