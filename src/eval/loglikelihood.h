// eval/loglikelihood.h: log-likelihood requests scored the way lm-evaluation-harness v0.3.0
// scores them (../shared/LM_EVAL.md 2.3-2.5): context and continuation are tokenized
// separately with no BOS, the sequence is left-truncated to the last max_length + 1 tokens
// (the continuation always survives), and each request returns the summed log-probability
// of its continuation plus whether every continuation token is the greedy argmax.
// Requests are sorted longest first, de-duplicated, right-padded and run B at a time,
// optionally sharded by batches over a team's ranks (LLOptions::comm).
// log_softmax runs in fp32 whatever the model dtype (Offsite's fp16 run rounds each LL to
// half precision, LM_EVAL.md 2.7, so its numbers can differ by a few tenths of a point).
// De-duplication keys on the tokens AND the context/continuation split (the harness keys on
// the tokens only and would share one result between two different splits).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/decoder_lm.h"
#include "tokenizer/tokenizer.h"

namespace ot {

// One request as text: the harness's (context, continuation) pair.
struct LLRequest {
  std::string context;
  std::string continuation;
};

// The same request after tokenization (both parts non-empty).
struct TokenRequest {
  std::vector<int64_t> context;
  std::vector<int64_t> continuation;
};

struct LLResult {
  double loglikelihood = 0.0;  // sum of log p(continuation token | prefix)
  bool is_greedy = false;      // argmax == token at every continuation position
};

struct LLOptions {
  int64_t max_length = 0;  // model window; 0 = harness_max_length(model config)
  int64_t batch_size = 1;  // requests per forward pass
  bool progress = true;    // progress bar on stderr when more than one batch runs
  std::string label = "loglikelihood";
  // Set with more than one rank: each rank runs its contiguous share of the batches and the
  // results are summed into every rank, so every rank returns what one rank alone would
  // (each request runs in the very batch it would run in unsharded: bit for bit).
  dist::Communicator* comm = nullptr;
};

// The harness adaptor's window: config.json "n_ctx", else "max_position_embeddings" (GPT-2's
// "n_positions" is that attribute in transformers), else 2048. Bundles carry their base
// model's config.json keys, so the same rule applies to them.
int64_t harness_max_length(const ModelConfig& config);

// The end-of-text id used as the context of an empty-context request: the tokenizer's EOS,
// else config.json's eos_token_id. Throws ot::Error when neither exists.
int64_t harness_eot_id(const Tokenizer& tok, const ModelConfig& config);

// Tokenizes (context, continuation) separately with no special tokens; an empty context
// becomes [eot_id]. Throws ot::Error (naming the request index) for an empty continuation.
TokenRequest tokenize_request(const Tokenizer& tok, int64_t eot_id, const LLRequest& r);

// Scores token requests; results come back in the order of `requests`. Throws ot::Error for
// an empty context or continuation, a continuation longer than max_length, or an id outside
// the model's vocabulary.
std::vector<LLResult> loglikelihood_tokens(DecoderLM& model, const std::vector<TokenRequest>& requests,
                                           const LLOptions& opts = {});

// Text requests: tokenize_request for each, then loglikelihood_tokens.
std::vector<LLResult> loglikelihood(DecoderLM& model, const Tokenizer& tok,
                                    const std::vector<LLRequest>& requests, const LLOptions& opts = {});

}  // namespace ot
