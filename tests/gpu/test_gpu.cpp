// tests/gpu/test_gpu.cpp: the GPU suite (CTest label `gpu`, built against a LibTorch with
// CUDA; scripts/gpu_check.sh runs it on a GPU machine). CUDA against the Hugging Face
// fixtures on every family (fp32 atol 1e-4 as on the CPU; bf16 autocast within 0.25, as on the CPU);
// distillation and adapter fine-tuning in bf16 and fp16 whose loss falls; a resume that is
// bit-exact on the GPU (fp16 loss scale and CUDA RNG in the state); NCCL initialised and
// all-reducing at world size 1; caching-allocator peaks and CUDA-event timers.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <filesystem>

#include "dist/nccl_operations.h"
#include "hf_fixtures.h"
#include "model/decoder_lm.h"
#include "model/load.h"
#include "model/peft.h"
#include "model/precision.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "test_support.h"
#include "token_blocks.h"
#include "train/trainer.h"
#include "util/gpu.h"
#include "util/signals.h"

namespace {

using namespace ot::test;

const c10::Device kCuda(c10::kCUDA, 0);

#define REQUIRE_GPU() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible"

ot::NamedTensors trainable(ot::DecoderLM& m) {
  ot::NamedTensors out;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

ot::DecoderLM on_gpu(const std::string& arch) {
  ot::LoadOptions lo;
  lo.device = kCuda;
  return ot::load_model(fixture_dir(arch), lo);
}

class GpuParity : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuParity, CudaMatchesTheReferenceInFp32AndBf16Autocast) {
  REQUIRE_GPU();
  const auto& fx = fixture(GetParam());
  ot::DecoderLM m = on_gpu(GetParam());
  torch::NoGradGuard ng;
  auto ids = json_tensor(fx["input_ids"], torch::kLong).to(kCuda);
  auto ref = json_tensor(fx["logits"], torch::kFloat);
  auto fp32 = m->forward(ids).logits.cpu();
  EXPECT_LT(max_abs_diff(fp32, ref), 1e-4);
  const auto& left = fx["padded"]["left"];
  auto mask = json_tensor(left["attention_mask"], torch::kLong);
  auto padded = m->forward(json_tensor(left["input_ids"], torch::kLong).to(kCuda), mask.to(kCuda)).logits.cpu();
  EXPECT_LT(masked_max_abs_diff(padded, json_tensor(left["logits"], torch::kFloat), mask), 1e-4);
  ot::AutocastGuard autocast(kCuda, ot::Precision::kBf16);
  auto bf16 = m->forward(ids).logits;
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  EXPECT_LT(max_abs_diff(bf16.cpu(), ref), 0.25);
}

INSTANTIATE_TEST_SUITE_P(Families, GpuParity, ::testing::Values("opt", "gpt2", "bloom", "llama"),
                         [](const auto& info) { return info.param; });

class GpuTraining : public ::testing::TestWithParam<ot::Precision> {};

TEST_P(GpuTraining, AdapterFineTuningLowersTheLoss) {
  REQUIRE_GPU();
  ot::DecoderLM m = on_gpu("opt");
  ot::set_trainable(m, {0, 3}, false, {});
  m->set_activation_checkpointing(true);
  TokenBlocks data(16, 32, 1000, 5);
  ot::TrainerOptions o;
  o.lr = 3e-3;
  o.batch_size = 4;
  o.epochs = 8;
  o.schedule = "constant";
  o.precision = GetParam();
  ot::Trainer t(trainable(m), o);
  t.set_mode_callback([&](bool train) { m->train(train); });
  std::vector<double> losses;
  auto r = t.fit(data, [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels); },
                 {}, [&](const std::string&, const ot::Metrics& row) { losses.push_back(row.at("loss")); });
  ASSERT_EQ(r.steps, 32);
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << losses.front() << " -> " << losses.back();
  EXPECT_GT(r.peak_device_memory_mib, 0.0);
  EXPECT_GT(r.device_seconds, 0.0);
  if (GetParam() == ot::Precision::kFp16) {
    EXPECT_GT(r.loss_scale, 0.0);
  }
}

TEST_P(GpuTraining, DistillationLowersTheLoss) {
  REQUIRE_GPU();
  ot::DecoderLM full = on_gpu("gpt2");
  ot::EmulatorOptions eo;
  eo.bottom = 1;
  eo.top = 1;
  eo.layers = 1;
  auto layout = ot::make_layout(4, eo, ot::select_middle_blocks(2, 1, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, eo);
  bundle->set_activation_checkpointing(true);
  ot::Distiller d(bundle.ptr(), full.ptr(), layout, {});
  TokenBlocks data(16, 32, 1000, 6);
  ot::TrainerOptions o;
  o.lr = 2e-3;
  o.batch_size = 4;
  o.epochs = 6;
  o.schedule = "constant";
  o.precision = GetParam();
  ot::Trainer t(d.trainable(), o);
  t.set_mode_callback([&](bool train) { bundle->train(train); });
  std::vector<double> losses;
  t.fit(data, [&](const ot::Batch& b, ot::Metrics& extra) { return d.loss(b, extra); }, {},
        [&](const std::string&, const ot::Metrics& row) { losses.push_back(row.at("loss")); });
  ASSERT_EQ(losses.size(), 24u);
  EXPECT_LT(losses.back(), losses.front()) << losses.front() << " -> " << losses.back();
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuTraining, ::testing::Values(ot::Precision::kBf16, ot::Precision::kFp16),
                         [](const auto& info) { return ot::precision_name(info.param); });

TEST(GpuResume, InterruptedFp16RunWithDropoutResumesBitExactly) {
  REQUIRE_GPU();
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  TempDir tmp;
  TokenBlocks data(10, 12, 1000, 123);
  auto make = [&] {
    ot::DecoderLM m = on_gpu("gpt2");
    ot::PeftOptions p;
    p.method = "lora";
    p.lora_dropout = 0.1;  // draws from the CUDA generator: its state must be in the trainer state
    torch::manual_seed(5);
    ot::apply_peft(m, {0, 3}, p);
    ot::set_trainable(m, {0, 3}, false, p);
    return m;
  };
  ot::TrainerOptions o;
  o.lr = 1e-3;
  o.batch_size = 2;
  o.epochs = 2;
  o.schedule = "cosine";
  o.precision = ot::Precision::kFp16;
  o.loss_scaler.growth_interval = 3;  // the scale changes during the run
  auto fit = [&](ot::DecoderLM& m, int stop_at) {
    ot::Trainer t(trainable(m), o);
    t.set_mode_callback([&](bool train) { m->train(train); });
    auto r = t.fit(data, [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(m->forward(b.input_ids).logits, b.labels); },
                   {}, [&](const std::string&, const ot::Metrics& row) {
                     if (row.at("step") == stop_at) ot::request_stop();
                   });
    ot::clear_stop_request();
    return r;
  };
  torch::manual_seed(99);
  ot::DecoderLM ref = make();
  auto rr = fit(ref, -1);
  o.state_path = tmp.file("state.pt");
  torch::manual_seed(99);
  ot::DecoderLM a = make();
  ASSERT_TRUE(fit(a, 4).interrupted);
  torch::manual_seed(4321);
  ot::DecoderLM b = make();
  auto rb = fit(b, -1);
  EXPECT_TRUE(rb.resumed);
  EXPECT_EQ(rb.loss_scale, rr.loss_scale);
  auto pr = ref->named_parameters(true), pb = b->named_parameters(true);
  for (auto& item : pr) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  at::globalContext().setDeterministicAlgorithms(false, false);
}

TEST(GpuNccl, InitialisesAndAllReducesAtWorldSizeOne) {
  REQUIRE_GPU();
  if (!ot::dist::built_with_nccl()) GTEST_SKIP() << "built without NCCL";
  auto comm = ot::dist::make_nccl_communicator(nullptr, 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->backend(), "nccl");
  auto t = torch::arange(1000, torch::TensorOptions().dtype(torch::kFloat).device(kCuda));
  comm->start_all_reduce_sum(t)->wait();
  comm->broadcast(t, 0);
  comm->barrier();
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(1000, torch::kFloat)));
  auto h = torch::ones({7}, torch::TensorOptions().dtype(torch::kBFloat16).device(kCuda));
  comm->start_all_reduce_sum(h)->wait();
  EXPECT_TRUE(torch::equal(h.cpu(), torch::ones({7}, torch::kBFloat16)));
}

TEST(GpuMeasurement, PeakMemoryAndEventTimer) {
  REQUIRE_GPU();
  EXPECT_TRUE(ot::gpu::built_with_cuda());
  EXPECT_GT(ot::gpu::total_memory_mib(kCuda), 1000.0);
  ot::gpu::reset_peak_memory(kCuda);
  ot::gpu::Timer timer(kCuda);
  timer.start();
  {
    auto big = torch::empty({256, 1024, 1024}, torch::TensorOptions().dtype(torch::kFloat).device(kCuda));  // 1 GiB
    big.fill_(1.0);
  }
  timer.stop();
  EXPECT_GE(ot::gpu::peak_memory_mib(kCuda), 1024.0);
  EXPECT_GT(timer.seconds(), 0.0);
  std::cerr << "device: " << ot::gpu::device_name(kCuda) << ", peak bf16 "
            << ot::gpu::peak_flops(kCuda, c10::kBFloat16) / 1e12 << " TFLOP/s\n";
}

}  // namespace
