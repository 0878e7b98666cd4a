// data/tasks.h: readers that turn downstream-task files into TaskDocs (data/task.h) for
// piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, webqs (alias web_questions)
// and race, in both the original releases' layouts and the HF `datasets` row layouts; the
// registry of default file names under a data root laid out like ../shared/data/tasks/;
// and the "first 5% of train is validation" split used for tasks without a validation set.
//
// Templates follow ../shared/LM_EVAL.md: evaluation = lm-eval-harness v0.3.0 zero-shot,
// training = Offsite-Tuning tasks.py (section 1b and each task's "Offsite training").
//
// Layout detection (file extension, then the first record's keys):
//   .jsonl  one JSON object per line; records are told apart by their keys:
//           piqa {goal,sol1,sol2[,label]}; without `label` the labels come from a
//           `<stem>-labels.lst` file beside it (original PIQA release) or options.labels_path;
//           openbookqa {question:{stem,choices[{text,label}]},answerKey} (original) or
//           {question_stem, choices:{text[],label[]}, answerKey} (HF);
//           arc {question:{stem,choices[...]},answerKey} (original) or
//           {question, choices:{text[],label[]}, answerKey} (HF);
//           hellaswag {activity_label, ctx_a, ctx_b, endings, label} (HF);
//           sciq {support, question, distractor1..3, correct_answer} (HF);
//           webqs {question, answers[]} (HF) or {qText, answers[]} (brmson repackaging);
//           webqs docs are TaskKind::kGreedyAlias with gold = -1 (any pruned alias counts);
//           race {article, question, options, answer} (HF rows, one per question; grouped
//           by exact article string like the harness) or one article object per line.
//   .json   a whole JSON document: an array of the records above; an ExpMRC wrapper
//           {"version", "data": [article objects]}; or one RACE article object
//           {article, questions[], options[][], answers[]} (original RACE files).
//   .txt    hellaswag: the 6-lines-per-item text format (llama.cpp / klosax
//           hellaswag_val_full.txt); race: one original RACE article (JSON) per file.
//   directory  race: every regular file in it (sorted by name) is one RACE article.
//
// HellaSwag text layout: its first line is klosax's clean-up of activity_label + ": " + ctx
// (only [header]/[step]/[substeps]/[title] tags removed, " [title]" -> ". ", double spaces
// collapsed, edges trimmed), NOT the harness preprocess. What we still apply:
//   * the harness `preprocess` in full to the context line and every ending: on text that
//     klosax already cleaned it changes nothing except removing the remaining bracketed
//     spans (e.g. "[www.kiddio.org]", "[citation needed]") the harness regex also removes;
//   * `capitalize(ctx_b)`: the ctx_a/ctx_b boundary is lost (the line holds the raw `ctx`),
//     so ctx_b is recovered as the text after the last ". " / "! " / "? " when that text
//     starts with a lower-case ASCII letter (ActivityNet items: "... roof. he"); it is then
//     capitalized like Python (first letter upper, the rest lower, ASCII only). Contexts
//     whose ctx_b started otherwise are left as they are (documented residual difference).
//
// Errors: a malformed record throws ot::Error "<file>:<line>: <what>, expected <...>" (JSON
// documents, which have no per-record line: "<file>: data[3]: key 'answers' ..."; a JSON
// syntax error reports nlohmann's line and column). A first record whose keys match no
// layout of the task is fatal even with skip_malformed. With skip_malformed the record
// is dropped, counted in TaskData::skipped and its message kept in TaskData::skip_messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/python_str.h"
#include "data/task.h"

namespace ot {

struct TaskReadOptions {
  bool skip_malformed = false;  // drop (and count) malformed records instead of throwing
  bool build_eval = true;       // fill TaskData::eval_docs
  bool build_train = true;      // fill TaskData::train_docs
  std::string labels_path;      // piqa without `label` keys: the 0/1-per-line labels file
};

struct TaskData {
  std::string task;                 // canonical name (web_questions -> webqs)
  std::string layout;               // detected layout, e.g. "piqa_hf_jsonl", "race_expmrc_json"
  std::vector<std::string> files;   // files read, in order
  // One doc per scored item (race: per article, last question scored). Train fields are
  // filled too for every task but race.
  std::vector<TaskDoc> eval_docs;
  // One doc per training example (race: per question). For the other tasks these are the
  // same docs as eval_docs (each doc carries both forms).
  std::vector<TaskDoc> train_docs;
  int64_t records = 0;              // records read, malformed ones included
  int64_t skipped = 0;              // malformed records dropped (skip_malformed only)
  std::vector<std::string> skip_messages;
};

// "web_questions" -> "webqs"; throws ot::Error for a task this module does not know.
std::string canonical_task_name(const std::string& task);
// The eight canonical names.
const std::vector<std::string>& known_tasks();

// Reads one file (or, for race, a directory of article files).
TaskData load_task(const std::string& task, const std::string& path, const TaskReadOptions& opts = {});
// Reads several files of the same layout in order and concatenates them (hellaswag parts).
TaskData load_task(const std::string& task, const std::vector<std::string>& paths,
                   const TaskReadOptions& opts = {});

// Default files under a data root laid out like ../shared/data/tasks/. Empty lists mean the
// split is not stored there (piqa/hellaswag/race: no train split; webqs: no validation,
// use split_validation). `eval` is the split the harness scores.
struct TaskFiles {
  std::vector<std::string> eval;
  std::vector<std::string> train;
  std::vector<std::string> validation;
};
TaskFiles task_files(const std::string& task, const std::string& root);

// HF `validation_split_percentage` as Offsite's run_clm uses it for datasets without a
// validation split: validation = train[:p%], train = train[p%:], in file order (no shuffle;
// `seed` is accepted for API symmetry and ignored). `datasets` turns a percent boundary into
// an index with rounding "closest": int(round(p * n / 100)) with Python's round-half-to-even,
// so n = 3778 gives 189 validation docs (188.9 -> 189) and n = 10 gives 0 (0.5 -> 0).
struct TrainValidationSplit {
  std::vector<TaskDoc> train;
  std::vector<TaskDoc> validation;
};
TrainValidationSplit split_validation(const std::vector<TaskDoc>& docs, int percent = 5,
                                      uint64_t seed = 0);
// The number of validation examples that split takes from n: int(round(percent * n / 100)).
int64_t validation_split_size(int64_t n, int percent);

// Template helpers, exposed for tests and for the evaluation harness.
std::string hellaswag_preprocess(const std::string& text);  // LM_EVAL 3.4
std::vector<std::string> webqs_prune_aliases(std::vector<std::string> answers);  // LM_EVAL 3.6

}  // namespace ot
