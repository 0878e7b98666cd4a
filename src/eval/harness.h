// eval/harness.h: zero-shot evaluation of one task's documents with lm-evaluation-harness
// v0.3.0 metrics (../shared/LM_EVAL.md 2.1, 2.2, 2.6, 3.6): multiple choice -> acc (argmax of
// the summed log-likelihoods) and acc_norm (log-likelihood / code-point length of the bare
// choice), ties to the lowest index; webqs -> acc = any pruned alias is the greedy
// continuation. Each metric is a mean with the closed-form standard error. Also the pure
// pieces (argmax, stderr, alias pruning, the harness's doc shuffle for `limit`) for tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/task.h"
#include "eval/loglikelihood.h"
#include "eval/task_result.h"

namespace ot {

// Per-document outcome, kept for inspection and tests.
struct DocScore {
  std::vector<double> loglikelihoods;  // one per continuation (aliases for webqs)
  std::vector<bool> greedy;
  double acc = 0.0;
  double acc_norm = 0.0;  // multiple choice with normalized_metric only
};

struct HarnessOptions {
  int64_t limit = 0;  // > 0: score only this many docs, chosen like the harness (see limit_docs)
  LLOptions ll;
};

struct TaskEvaluation {
  std::vector<TaskResult> results;  // acc (+ acc_norm) rows
  std::vector<DocScore> docs;       // in the order scored
};

// The harness task VERSION for a task name (0 for unknown names).
int harness_task_version(const std::string& task);

// Scores every doc (all of one task: TaskDoc::task must agree). All requests of the task go
// through loglikelihood() together, so batching and de-duplication span documents.
// Throws ot::Error for a doc without continuations, a gold index out of range, or choices
// and continuations of different lengths.
TaskEvaluation evaluate_task(DecoderLM& model, const Tokenizer& tok, const std::vector<TaskDoc>& docs,
                             const HarnessOptions& opts = {});

// Index of the first maximum (numpy.argmax); -1 for an empty vector.
int64_t argmax_first(const std::vector<double>& v);

// Number of Unicode code points of UTF-8 text (Python len(str)); throws on invalid UTF-8.
int64_t code_point_length(const std::string& s);

// Multiple-choice metrics of one doc from its log-likelihoods (LM_EVAL 2.2).
// acc_norm divides by code_point_length(choices[i]); a zero length counts as 1 would hide
// a bad doc, so it throws instead.
DocScore score_multiple_choice(const TaskDoc& doc, const std::vector<LLResult>& lls);

// webqs alias pruning lives with the task readers: webqs_prune_aliases in data/tasks.h.

// webqs acc of one doc: 1 if any alias request is greedy.
double webqs_accuracy(const std::vector<LLResult>& alias_results);

// Sample mean and the harness's mean_stderr: sample std (n - 1) / sqrt(n); 0 when n < 2.
double mean_of(const std::vector<double>& v);
double mean_stderr(const std::vector<double>& v);

// The docs the harness scores with a limit: the docs shuffled with Python's
// random.Random(42).shuffle (lm_eval/evaluator.py), then the first `limit` (all when limit
// <= 0 or larger than the task). Returns indices into the original list.
std::vector<size_t> limit_docs(size_t n_docs, int64_t limit);

}  // namespace ot
