// data/task.h: one document of a downstream task in both of the forms offsite needs:
// the lm-eval-harness v0.3.0 zero-shot form (context + scored continuations, see
// ../shared/LM_EVAL.md) and the Offsite-Tuning training form (context + target, loss on
// the target only). Readers (data/tasks.h) fill it from the original and HF layouts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ot {

enum class TaskKind {
  kMultipleChoice,  // piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, race
  kGreedyAlias,     // webqs: correct if any alias is the greedy continuation
};

struct TaskDoc {
  std::string task;     // piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, webqs, race
  std::string id;       // source id or "file:line"
  TaskKind kind = TaskKind::kMultipleChoice;

  // Evaluation (harness v0.3.0): requests (eval_context, continuations[i]); continuations
  // already carry their leading " ". `choices` are the bare strings (acc_norm divides by
  // their length in code points).
  std::string eval_context;
  std::vector<std::string> continuations;
  std::vector<std::string> choices;
  int64_t gold = -1;            // multiple choice: index of the correct choice
  bool normalized_metric = true;  // acc_norm reported (false for race, webqs)

  // Training (Offsite-Tuning tasks.py): loss only on the target tokens.
  std::string train_context;
  std::string train_target;
};

}  // namespace ot
