// eval/loglikelihood.cpp: harness-style request scoring (see loglikelihood.h).
#include "eval/loglikelihood.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "eval/sharding.h"

#include "util/error.h"
#include "util/progress.h"

namespace ot {

int64_t harness_max_length(const ModelConfig& config) {
  const nlohmann::json& raw = config.raw;
  auto positive = [&](const char* key) -> int64_t {
    if (!raw.is_object() || !raw.contains(key) || !raw[key].is_number_integer()) return 0;
    return raw[key].get<int64_t>();
  };
  if (int64_t n = positive("n_ctx"); n > 0) return n;
  if (int64_t n = positive("max_position_embeddings"); n > 0) return n;
  // transformers maps GPT-2's max_position_embeddings attribute onto n_positions.
  if (config.arch == Arch::kGPT2) {
    if (int64_t n = positive("n_positions"); n > 0) return n;
  }
  return 2048;
}

int64_t harness_eot_id(const Tokenizer& tok, const ModelConfig& config) {
  if (auto e = tok.eos_id()) return *e;
  if (config.eos_token_id) return *config.eos_token_id;
  fail("neither the tokenizer nor config.json defines an end-of-text token (needed as the "
       "context of an empty-context request)");
}

TokenRequest tokenize_request(const Tokenizer& tok, int64_t eot_id, const LLRequest& r) {
  TokenRequest t;
  // The harness encodes the two parts on their own and never adds special tokens.
  t.context = r.context.empty() ? std::vector<int64_t>{eot_id} : tok.encode(r.context, false);
  t.continuation = tok.encode(r.continuation, false);
  return t;
}

namespace {

// A unique request: the concatenated tokens and where the continuation starts. The harness
// keys only on the tokens; keeping the split too means two requests share a result only
// when they are truly the same request.
struct Unique {
  std::vector<int64_t> full;  // context + continuation, untruncated
  int64_t cont_len = 0;
  LLResult result;
};

}  // namespace

std::vector<LLResult> loglikelihood_tokens(DecoderLM& model, const std::vector<TokenRequest>& requests,
                                           const LLOptions& opts) {
  const int64_t max_len = opts.max_length > 0 ? opts.max_length : harness_max_length(model->config());
  const int64_t vocab = model->config().vocab_size;
  OT_REQUIRE(opts.batch_size >= 1, "batch size must be at least 1, got ", opts.batch_size);

  // Validate and build the keys.
  std::vector<Unique> all;
  all.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const TokenRequest& r = requests[i];
    OT_REQUIRE(!r.context.empty(), "request ", i, ": empty context (use the end-of-text id for an empty context)");
    OT_REQUIRE(!r.continuation.empty(), "request ", i, ": the continuation has no tokens");
    OT_REQUIRE(static_cast<int64_t>(r.continuation.size()) <= max_len, "request ", i, ": the continuation has ",
               r.continuation.size(), " tokens, more than the model window of ", max_len);
    Unique u;
    u.full = r.context;
    u.full.insert(u.full.end(), r.continuation.begin(), r.continuation.end());
    for (int64_t id : u.full)
      OT_REQUIRE(id >= 0 && id < vocab, "request ", i, ": token id ", id, " is outside the vocabulary [0, ", vocab, ")");
    u.cont_len = static_cast<int64_t>(r.continuation.size());
    all.push_back(std::move(u));
  }

  // Longest first, then by tokens (the harness's order); equal keys collapse to one.
  std::vector<size_t> order(all.size());
  std::iota(order.begin(), order.end(), 0);
  auto less = [&](size_t a, size_t b) {
    const Unique &x = all[a], &y = all[b];
    if (x.full.size() != y.full.size()) return x.full.size() > y.full.size();
    if (x.full != y.full) return x.full < y.full;
    return x.cont_len < y.cont_len;
  };
  std::stable_sort(order.begin(), order.end(), less);
  std::vector<size_t> uniq;                  // indices into `all` of the representatives
  std::vector<size_t> rep_of(all.size());    // request -> representative
  for (size_t k = 0; k < order.size(); ++k) {
    size_t i = order[k];
    if (!uniq.empty() && !less(uniq.back(), i) && !less(i, uniq.back())) {
      rep_of[i] = uniq.back();
      continue;
    }
    uniq.push_back(i);
    rep_of[i] = i;
  }

  torch::NoGradGuard no_grad;
  const c10::Device dev = model->device();
  const BatchShards shards(static_cast<int64_t>(uniq.size()), opts.batch_size, opts.comm);
  std::unique_ptr<ProgressBar> bar;
  if (opts.progress && shards.num_batches() > 1) bar = std::make_unique<ProgressBar>(opts.label, shards.num_batches());

  shards.for_each_own_batch([&](int64_t b, int64_t batch_begin, int64_t batch_end) {
    const auto lo = static_cast<size_t>(batch_begin);
    const int64_t B = batch_end - batch_begin;
    // Model input per row: the last max_len + 1 tokens without the final one.
    std::vector<int64_t> inplen(B);
    int64_t T = 0;
    for (int64_t r = 0; r < B; ++r) {
      const Unique& u = all[uniq[lo + r]];
      inplen[r] = std::min<int64_t>(static_cast<int64_t>(u.full.size()), max_len + 1) - 1;
      T = std::max(T, inplen[r]);
    }
    auto ids = torch::zeros({B, T}, torch::kLong);   // (B, T), right-padded with 0
    auto mask = torch::zeros({B, T}, torch::kLong);  // (B, T), 1 on real tokens
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    int64_t tokens = 0;
    for (int64_t r = 0; r < B; ++r) {
      const Unique& u = all[uniq[lo + r]];
      const int64_t start = static_cast<int64_t>(u.full.size()) - 1 - inplen[r];
      for (int64_t t = 0; t < inplen[r]; ++t) {
        ids_a[r][t] = u.full[static_cast<size_t>(start + t)];
        mask_a[r][t] = 1;
      }
      tokens += inplen[r];
    }
    const bool padded = std::any_of(inplen.begin(), inplen.end(), [&](int64_t n) { return n != T; });
    at::Tensor logits = model->forward(ids.to(dev), padded ? mask.to(dev) : at::Tensor()).logits;  // (B, T, V)

    for (int64_t r = 0; r < B; ++r) {
      Unique& u = all[uniq[lo + r]];
      const int64_t c = u.cont_len;
      // Positions inplen-c .. inplen-1 predict the continuation tokens.
      at::Tensor rows = logits[r].narrow(0, inplen[r] - c, c).to(torch::kFloat);  // (c, V)
      at::Tensor logp = torch::log_softmax(rows, -1);                               // (c, V)
      at::Tensor target = torch::tensor(std::vector<int64_t>(u.full.end() - c, u.full.end()), torch::kLong)
                              .to(logp.device());                                   // (c)
      at::Tensor picked = logp.gather(1, target.unsqueeze(1)).squeeze(1);           // (c)
      u.result.loglikelihood = picked.to(torch::kDouble).sum().item<double>();
      u.result.is_greedy = logp.argmax(-1).eq(target).all().item<bool>();
    }
    if (bar) bar->update(b + 1, tokens);
  });
  if (bar) bar->finish();
  if (shards.sharded()) {
    // (loglikelihood, is_greedy) of every unique request; other ranks' entries are 0 here, and
    // x + 0 is x, so the sum hands every rank the owner's values exactly.
    std::vector<double> mine(2 * uniq.size(), 0.0);
    const auto [own_begin, own_end] = shards.own_items();
    for (auto k = static_cast<size_t>(own_begin); k < static_cast<size_t>(own_end); ++k) {
      mine[2 * k] = all[uniq[k]].result.loglikelihood;
      mine[2 * k + 1] = all[uniq[k]].result.is_greedy ? 1.0 : 0.0;
    }
    const std::vector<double> every = shards.sum_over_ranks(mine);
    for (size_t k = 0; k < uniq.size(); ++k) {
      all[uniq[k]].result.loglikelihood = every[2 * k];
      all[uniq[k]].result.is_greedy = every[2 * k + 1] > 0.5;
    }
  }

  std::vector<LLResult> out(all.size());
  for (size_t i = 0; i < all.size(); ++i) out[i] = all[rep_of[i]].result;
  return out;
}

std::vector<LLResult> loglikelihood(DecoderLM& model, const Tokenizer& tok,
                                    const std::vector<LLRequest>& requests, const LLOptions& opts) {
  const int64_t eot = harness_eot_id(tok, model->config());
  std::vector<TokenRequest> toks;
  toks.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    toks.push_back(tokenize_request(tok, eot, requests[i]));
    OT_REQUIRE(!toks.back().continuation.empty(), "request ", i, ": continuation \"", requests[i].continuation,
               "\" encodes to no tokens");
  }
  return loglikelihood_tokens(model, toks, opts);
}

}  // namespace ot
