// bench/bench_model.cpp: throughput of an OPT-125m-shaped model (12 blocks, hidden 768,
// 12 heads, ffn 3072, vocab 50272, sequence 512) on this machine: forward and
// forward+backward tokens/s, achieved GFLOP/s, and the ratio to the fp32 GEMM throughput
// measured in the same run (BM_Gemm). FLOPs per token follow Kaplan et al.:
// forward 2N + 2 * n_layer * T * C (N = non-embedding parameters + head), backward 2x that.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/decoder_lm.h"
#include "model/load.h"

namespace {

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

void BM_Gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, b));
  double flops = 2.0 * double(n) * double(n) * double(n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Gemm)->Arg(2048)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_OPT125mForward(benchmark::State& state) {
  const int64_t B = state.range(0), T = 512;
  auto& m = model();
  m->eval();
  auto ids = torch::randint(4, 50272, {B, T}, torch::kLong);
  torch::NoGradGuard ng;
  for (auto _ : state) benchmark::DoNotOptimize(m->forward(ids).logits);
  double tokens = double(B * T);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(tokens * flops_per_token(m, T) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_OPT125mForward)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(5.0);

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
  state.counters["GFLOP/s"] = benchmark::Counter(3.0 * tokens * flops_per_token(m, T) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_OPT125mForwardBackward)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(10.0);

}  // namespace


