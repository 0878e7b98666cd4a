// model/generate.cpp: see generate.h.
#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>

#include "util/error.h"

namespace ot {

int64_t sample_next(const at::Tensor& logits, const GenerateOptions& opts, at::Generator& gen) {
  auto l = logits.to(torch::kFloat).to(torch::kCPU);  // (V)
  if (opts.temperature <= 0.0) return l.argmax().item<int64_t>();
  auto probs = torch::softmax(l / opts.temperature, -1);
  if (opts.top_p < 1.0) {
    // Keep the smallest set of most likely ids whose mass reaches top_p (at least one).
    auto sorted = probs.sort(/*dim=*/-1, /*descending=*/true);
    auto p = std::get<0>(sorted), idx = std::get<1>(sorted);
    auto before = p.cumsum(-1) - p;  // mass strictly before each id
    p = p.masked_fill(before >= opts.top_p, 0.0);
    probs = torch::zeros_like(probs).scatter(-1, idx, p);
    probs = probs / probs.sum();
  }
  return torch::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

std::vector<int64_t> generate(DecoderLM& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts,
                              const std::function<void(int64_t)>& on_token) {
  OT_REQUIRE(!prompt.empty(), "generate: the prompt has no tokens (add a BOS token or text)");
  OT_REQUIRE(opts.max_new_tokens >= 0, "--max-new-tokens: expected >= 0, got ", opts.max_new_tokens);
  OT_REQUIRE(opts.top_p > 0.0 && opts.top_p <= 1.0, "--top-p: expected a value in (0, 1], got ", opts.top_p);
  OT_REQUIRE(opts.temperature >= 0.0, "--temperature: expected >= 0, got ", opts.temperature);
  const auto& cfg = model->config();
  const int64_t limit = cfg.max_positions > 0 ? cfg.max_positions : INT64_MAX;
  OT_REQUIRE(static_cast<int64_t>(prompt.size()) <= limit, "generate: the prompt has ", prompt.size(),
             " tokens but the model handles at most ", limit, " positions");

  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
  auto dev = torch::TensorOptions().dtype(torch::kLong).device(model->device());
  std::vector<int64_t> seq = prompt, out;
  check_token_ids(torch::tensor(seq, torch::kLong), cfg.vocab_size, "prompt");
  KVCache cache;
  at::Tensor step_ids = torch::tensor(seq, dev).unsqueeze(0);  // (1, T)
  for (int64_t n = 0; n < opts.max_new_tokens && static_cast<int64_t>(seq.size()) < limit + 1; ++n) {
    ForwardOptions fo;
    at::Tensor logits;
    if (opts.use_cache) {
      fo.cache = &cache;
      logits = model->forward(step_ids, {}, {}, fo).logits;
    } else {
      logits = model->forward(torch::tensor(seq, dev).unsqueeze(0), {}, {}, fo).logits;
    }
    int64_t next = sample_next(logits[0][logits.size(1) - 1], opts, gen);
    seq.push_back(next);
    out.push_back(next);
    if (on_token) on_token(next);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end()) break;
    if (static_cast<int64_t>(seq.size()) >= limit) break;  // no position left for another step
    step_ids = torch::full({1, 1}, next, dev);
  }
  return out;
}

}  // namespace ot
