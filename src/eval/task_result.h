// eval/task_result.h: one row of evaluation results (a metric of a task), kept free of
// LibTorch so that the paper's vocabulary (eval/vocabulary.h) and the analysis can use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ot {

// One row of the results table: a metric of a task.
struct TaskResult {
  std::string task;               // harness name: piqa, arc_easy, webqs, wikitext, ...
  int version = 0;                // the harness task VERSION (race and wikitext: 1)
  std::string metric;             // acc, acc_norm, word_perplexity, ...
  double value = 0.0;
  std::optional<double> std_error;  // absent for the perplexity metrics
  int64_t n = 0;                  // documents scored
};

}  // namespace ot
