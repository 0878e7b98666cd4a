// eval/evaluate.h: the evaluation of one model as `ot eval` and the experiment recipes run it
// (harness tasks, WikiText pages and texts scored by the paper's block perplexity), and the
// mean token loss that validation during training uses. Both split their work over the ranks
// of the communicator they are given (eval/sharding.h) and return the same on every rank.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "data/batch.h"
#include "data/task.h"
#include "dist/communicator.h"
#include "eval/harness.h"
#include "model/decoder_lm.h"
#include "model/precision.h"
#include "tokenizer/tokenizer.h"

namespace ot {

// What one evaluation scores: harness tasks (multiple choice, webqs), WikiText pages
// (harness rolling perplexity) and texts scored by the paper's block perplexity.
struct EvalSpec {
  std::vector<std::pair<std::string, std::vector<TaskDoc>>> tasks;       // name, eval docs
  std::vector<std::pair<std::string, std::vector<std::string>>> wikitext;  // name, pages
  std::vector<std::pair<std::string, std::string>> texts;                 // name, text
  int64_t block_size = 512;   // texts: tokens per block
  int64_t batch_size = 8;     // requests or blocks per forward pass
  int64_t limit = 0;          // tasks: score only N docs (the harness's seeded shuffle)
  int64_t max_length = 0;     // harness window (0: the model's)
  bool row_bos = true;        // texts: BOS before each row for OPT and LLaMA, like their HF tokenizers
  Precision precision = Precision::kFp32;  // autocast of the forward passes
};

// Metrics of one model: per task the harness metrics; per text `perplexity`, `loss` (nats per
// token) and `bits_per_byte` (the token loss spread over the text's UTF-8 bytes). Every rank of
// `comm` calls it and scores its share.
std::vector<TaskResult> evaluate_model(DecoderLM& model, const Tokenizer& tok, const EvalSpec& spec,
                                       dist::Communicator& comm);

// Mean token loss (causal_lm_loss over every scored token) of `model` over the first
// `max_examples` items of a BatchSource (0: all), in batches of `batch_size`, for validation;
// forward passes in the autocast state of the caller. Every rank of `comm` calls it.
double mean_loss(DecoderLM& model, const BatchSource& data, int64_t batch_size, dist::Communicator& comm,
                 int64_t max_examples = 0);

}  // namespace ot
