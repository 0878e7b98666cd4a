// eval/evaluate.cpp: one model's evaluation and the validation loss (see evaluate.h).
#include "eval/evaluate.h"

#include <torch/torch.h>

#include <cmath>

#include "eval/loglikelihood.h"
#include "eval/perplexity.h"
#include "eval/sharding.h"
#include "util/error.h"

namespace ot {

double mean_loss(DecoderLM& model, const BatchSource& data, int64_t batch_size, dist::Communicator& comm,
                 int64_t max_examples) {
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t n = max_examples > 0 ? std::min(max_examples, data.size()) : data.size();
  double nll = 0.0;
  int64_t count = 0;
  const BatchShards shards(n, batch_size, &comm);
  shards.for_each_own_batch([&](int64_t, int64_t begin, int64_t end) {
    std::vector<int64_t> idx;
    for (int64_t j = begin; j < end; ++j) idx.push_back(j);
    Batch b = to_device(data.batch(idx), model->device());
    auto logits = model->forward(b.input_ids, b.attention_mask).logits;
    nll += causal_lm_loss(logits, b.labels, LossReduction::kSum).item<double>();
    count += causal_lm_scored_tokens(b.labels);
  });
  if (shards.sharded()) {
    const std::vector<double> sums = shards.sum_over_ranks({nll, double(count)});
    nll = sums[0];
    count = static_cast<int64_t>(sums[1]);
  }
  model->train(was_training);
  OT_REQUIRE(count > 0, "evaluation data has no scored tokens");
  return nll / double(count);
}

std::vector<TaskResult> evaluate_model(DecoderLM& model, const Tokenizer& tok, const EvalSpec& spec,
                                       dist::Communicator& comm) {
  AutocastGuard autocast(model->device(), spec.precision);
  std::vector<TaskResult> results;
  LLOptions llo;
  llo.batch_size = spec.batch_size;
  llo.max_length = spec.max_length > 0 ? spec.max_length : harness_max_length(model->config());
  llo.comm = &comm;  // tasks and WikiText sharded over the ranks
  for (const auto& [name, docs] : spec.tasks) {
    HarnessOptions ho;
    ho.limit = spec.limit;
    ho.ll = llo;
    TaskEvaluation ev = evaluate_task(model, tok, docs, ho);
    results.insert(results.end(), ev.results.begin(), ev.results.end());
  }
  for (const auto& [name, pages] : spec.wikitext) {
    WikitextResult w = evaluate_wikitext(model, tok, pages, llo, spec.limit);
    const int v = harness_task_version("wikitext");
    results.push_back({name, v, "word_perplexity", w.word_perplexity, std::nullopt, w.pages});
    results.push_back({name, v, "byte_perplexity", w.byte_perplexity, std::nullopt, w.pages});
    results.push_back({name, v, "bits_per_byte", w.bits_per_byte, std::nullopt, w.pages});
  }
  for (const auto& [name, text] : spec.texts) {
    int64_t bos = -1;
    const Arch arch = model->config().arch;
    // The families whose tokenizers put BOS before each row (Qwen2's and Phi-3's do not).
    if (spec.row_bos && (arch == Arch::kOPT || arch == Arch::kLlama || arch == Arch::kMistral || arch == Arch::kGemma)) {
      auto b = tok.bos_id() ? tok.bos_id() : model->config().bos_token_id;
      OT_REQUIRE(b.has_value(), name, ": this model's tokenizer puts BOS before each row, but neither the "
                 "tokenizer nor config.json names one");
      bos = *b;
    }
    const std::vector<std::string> rows = wikitext_rows(text);
    auto tokens = tokenize_rows(tok, rows, bos);
    int64_t n_tokens = 0, n_bytes = 0;
    for (const auto& r : tokens) n_tokens += static_cast<int64_t>(r.size()) - (bos >= 0 ? 1 : 0);
    for (const auto& r : rows) n_bytes += static_cast<int64_t>(r.size());
    auto blocks = group_rows_into_blocks(tokens, spec.block_size);
    OT_REQUIRE(!blocks.empty(), name, ": no text to score");
    ClmPerplexityOptions po;
    po.batch_size = spec.batch_size;
    po.comm = &comm;  // sharded over the ranks
    ClmPerplexity p = clm_perplexity(model, blocks, po);
    results.push_back({name, 0, "perplexity", p.perplexity, std::nullopt, p.blocks});
    results.push_back({name, 0, "loss", p.loss, std::nullopt, p.blocks});
    if (n_bytes > 0)
      results.push_back({name, 0, "bits_per_byte", p.loss * double(n_tokens) / double(n_bytes) / std::log(2.0), std::nullopt, p.blocks});
  }
  return results;
}

}  // namespace ot
