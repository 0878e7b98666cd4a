// bench/bench_model.cpp: training and inference throughput on this machine, each figure to be
// read beside the fp32 GEMM rate measured in the same run (BM_Gemm):
//   OPT-125m shape (12 x 768, 12 heads, ffn 3072, vocab 50272, sequence 512): forward,
//     forward + backward, and the whole training step (forward, backward, AdamW) at batch 1;
//   the quickstart's shape (OPT 12 x 128, 4 heads, ffn 512, vocab 2048, batch 8 x 256): the
//     whole training step;
//   AdamW alone over the 125M parameters (the update's share of a step);
//   causal self-attention alone at the quickstart's shape: the fused CPU kernel against
//     the math path it replaces.
// Tokens/s, achieved GFLOP/s and its share of the GEMM rate (xGEMM); FLOPs per token follow
// Kaplan et al.: forward 2N + 2 * n_layer * T * C (N = non-embedding parameters + head),
// backward 2x that.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/causal_attention.h"
#include "model/decoder_lm.h"
#include "model/load.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "util/compat.h"
#include "util/gemm_rate.h"
#include "util/host_threads.h"

namespace {

// As `ot` does (cli/main.cpp): a step's freed tensors stay in the process for the next step.
[[maybe_unused]] const bool kFreedHostMemoryKept = ot::keep_freed_host_memory();

ot::ModelConfig quickstart_config() {
  nlohmann::json j = {{"model_type", "opt"},        {"hidden_size", 128},
                      {"num_hidden_layers", 12},   {"num_attention_heads", 4},
                      {"ffn_dim", 512},            {"max_position_embeddings", 256},
                      {"vocab_size", 2048},        {"do_layer_norm_before", true},
                      {"word_embed_proj_dim", 128}, {"pad_token_id", 1},
                      {"dropout", 0.0}};  // as experiments/quickstart.toml trains it
  return ot::parse_model_config(j, "quickstart-shape");
}

ot::ModelConfig opt125m_config() {
  nlohmann::json j = {{"model_type", "opt"},        {"hidden_size", 768},
                      {"num_hidden_layers", 12},   {"num_attention_heads", 12},
                      {"ffn_dim", 3072},           {"max_position_embeddings", 2048},
                      {"vocab_size", 50272},       {"do_layer_norm_before", true},
                      {"word_embed_proj_dim", 768}, {"pad_token_id", 1}};
  return ot::parse_model_config(j, "opt-125m-shape");
}

double flops_per_token(ot::DecoderLM& m, int64_t T) {
  const auto& c = m->config();
  // Matmul parameters: blocks + the (tied) head projection; embeddings are lookups.
  double n = double(m->num_parameters(ot::ModelPart::kBlocks)) + double(c.vocab_size * c.hidden_size);
  return 2.0 * n + 2.0 * double(c.num_layers) * double(T) * double(c.hidden_size);
}

ot::DecoderLM& model() {
  static ot::DecoderLM m = [] {
    torch::manual_seed(0);
    auto mm = ot::build_model(opt125m_config());
    mm->init_weights(0.02);
    return mm;
  }();
  return m;
}

// The model FLOP rate of a case and its share of the machine's fp32 GEMM rate, measured once
// per process (2048^2, the threads the cases run with): a slow hour lowers both, a slow
// change only the share ("xGEMM").
void flop_counters(benchmark::State& state, double flops_per_iteration) {
  static const double gemm_gflops = ot::measure_gemm_rate(c10::Device(c10::kCPU)).gflops;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["xGEMM"] =
      benchmark::Counter(flops_per_iteration * 1e-9 / gemm_gflops, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, b));
  double flops = 2.0 * double(n) * double(n) * double(n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Gemm)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_OPT125mForward(benchmark::State& state) {
  const int64_t B = state.range(0), T = 512;
  auto& m = model();
  m->eval();
  auto ids = torch::randint(4, 50272, {B, T}, torch::kLong);
  torch::NoGradGuard ng;
  for (auto _ : state) benchmark::DoNotOptimize(m->forward(ids).logits);
  double tokens = double(B * T);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  flop_counters(state, tokens * flops_per_token(m, T));
}
BENCHMARK(BM_OPT125mForward)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

void BM_OPT125mForwardBackward(benchmark::State& state) {
  const int64_t B = state.range(0), T = 512;
  auto& m = model();
  m->train();
  auto ids = torch::randint(4, 50272, {B, T}, torch::kLong);
  for (auto _ : state) {
    m->zero_grad();
    auto loss = ot::causal_lm_loss(m->forward(ids).logits, ids);
    loss.backward();
    benchmark::DoNotOptimize(loss);
  }
  double tokens = double(B * T);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  flop_counters(state, 3.0 * tokens * flops_per_token(m, T));
}
BENCHMARK(BM_OPT125mForwardBackward)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(10.0);

// The trainer's step: zero the gradients, forward, loss, backward, clip, AdamW (the trainer's
// optimizer, train/optimizer.h, with the quickstart's decay).
void train_step_loop(benchmark::State& state, ot::DecoderLM& m, int64_t B, int64_t T) {
  m->train();
  std::vector<at::Tensor> params = m->parameters();
  ot::TrainerOptions o;
  o.lr = 1e-4;
  o.weight_decay = 0.01;
  auto adamw = ot::make_adamw(params, o);
  auto ids = torch::randint(4, m->config().vocab_size, {B, T}, torch::kLong);
  for (auto _ : state) {
    adamw->zero_grad();
    auto loss = ot::causal_lm_loss(m->forward(ids).logits, ids);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    adamw->step();
    benchmark::DoNotOptimize(loss);
  }
  const double tokens = double(B * T);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  flop_counters(state, 3.0 * tokens * flops_per_token(m, T));
}

void BM_OPT125mTrainStep(benchmark::State& state) { train_step_loop(state, model(), state.range(0), 512); }
BENCHMARK(BM_OPT125mTrainStep)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(10.0);

void BM_QuickstartTrainStep(benchmark::State& state) {
  torch::manual_seed(0);
  auto m = ot::build_model(quickstart_config());
  m->init_weights(0.02);
  train_step_loop(state, m, 8, 256);
}
BENCHMARK(BM_QuickstartTrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

// Attention at the quickstart's shape (B 8, H 4, T 256, D 32), q, k, v viewed from (B, T, H*D)
// projections as the blocks do: forward + backward (range 1) or forward without gradients
// (range 0), through the fused kernel or the math path (compat's scaled dot product with
// is_causal, then the (B, T, H*D) output attend returns).
void attention_loop(benchmark::State& state, bool fused) {
  const int64_t B = 8, H = 4, T = 256, D = 32;
  const bool backward = state.range(0) == 1;
  torch::manual_seed(0);
  auto x = torch::randn({3, B, T, H * D}).requires_grad_(backward);
  auto heads = [&](int64_t i) { return x[i].view({B, T, H, D}).transpose(1, 2); };
  auto dout = torch::randn({B, T, H * D});
  for (auto _ : state) {
    torch::AutoGradMode grad_mode(backward);
    auto q = heads(0), k = heads(1), v = heads(2);
    at::Tensor out = fused ? ot::causal_attention_cpu(q, k, v, 1.0 / std::sqrt(double(D)))
                           : ot::compat::scaled_dot_product_attention(q, k, v, at::Tensor(), true)
                                 .transpose(1, 2)
                                 .reshape({B, T, H * D});
    if (backward) {
      x.mutable_grad() = at::Tensor();
      out.backward(dout);
    }
    benchmark::DoNotOptimize(out);
  }
}
void BM_AttentionFused(benchmark::State& state) { attention_loop(state, true); }
void BM_AttentionMath(benchmark::State& state) { attention_loop(state, false); }
BENCHMARK(BM_AttentionFused)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_AttentionMath)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// AdamW alone over every parameter of the OPT-125m shape, gradients already there.
void BM_AdamWStepOPT125m(benchmark::State& state) {
  auto& m = model();
  std::vector<at::Tensor> params = m->parameters();
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p).mul_(1e-3);
  ot::TrainerOptions o;
  o.weight_decay = 0.01;
  auto adamw = ot::make_adamw(params, o);
  for (auto _ : state) adamw->step();
  double n = 0;
  for (const auto& p : params) n += double(p.numel());
  state.counters["params/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AdamWStepOPT125m)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace
