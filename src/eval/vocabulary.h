// eval/vocabulary.h: the words the Offsite-Tuning paper's results are told in, defined once
// for evaluation, the experiment recipes and the analysis (and, through summary.json, the
// plot script):
//   the five settings (../shared/PAPER.md 2.4) with their row labels, in the order of the
//   paper's tables; the paper's task columns and their labels; which metrics are accuracies
//   and which improve downwards; and the three pattern checks the paper's claims are tested
//   with (PAPER.md 2.5), per run (pattern_margins) or per table (analysis/tables.h).
// Free of LibTorch: the analysis links it without the model code.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "eval/task_result.h"

namespace ot {

// ---- settings ----

enum class Setting {
  kZsFull,      // the original model, zero-shot
  kZsEmulator,  // adapter + emulator (the bundle), zero-shot
  kFtEmulator,  // adapter fine-tuned on the emulator, evaluated with the emulator
  kPlugin,      // that fine-tuned adapter plugged into the full model
  kFtFull,      // the whole model fine-tuned
};

// In the order PAPER.md 2.4 defines them: zs_full, zs_emulator, ft_emulator, plugin, ft_full.
const std::vector<Setting>& all_settings();
std::string setting_name(Setting s);   // "zs_full", ...
std::string setting_label(Setting s);  // the paper's row label, e.g. "OT Plug-in"
// Throws ot::Error listing the valid names.
Setting parse_setting(const std::string& name);

// The paper's table rows, top to bottom: zs_full, zs_emulator, ft_full, ft_emulator, plugin.
const std::vector<std::string>& paper_settings();
// Row label of a setting name: "Full ZS", "Emulator ZS", "FT", "OT Emulator", "OT Plug-in";
// any other name (e.g. distilled_emulator) as given.
std::string setting_label(const std::string& setting);

// ---- tasks ----

// The paper's column order: openbookqa, piqa, arc_easy, arc_challenge, hellaswag, sciq,
// webqs, race, wikitext.
const std::vector<std::string>& paper_tasks();
// The first eight of paper_tasks(): the tasks of the "8-task average".
const std::vector<std::string>& average_tasks();
// Column label: "OBQA", ..., "WikiText"; others as given.
std::string task_label(const std::string& task);

// ---- metrics ----

// acc and acc_norm: fractions, shown in %.
bool is_accuracy_metric(const std::string& metric);
// Perplexities (ppl, *_ppl, *perplexity*), bits per byte and losses (loss, *_loss, e.g.
// validation_loss) improve downwards; everything else upwards.
bool lower_is_better(const std::string& metric);
// How much `better` beats `worse` on `metric`: better - worse, or worse - better when lower is
// better; positive means the ordering holds.
double metric_margin(const std::string& metric, double better, double worse);

// ---- the paper's pattern ----

// "<better> beats <worse>" on a task's metric.
struct PatternCheck {
  std::string name;           // e.g. "Plug-in above Full ZS"
  std::string better, worse;  // setting names
};
// Emulator ZS below Full ZS (the emulator alone is worse: privacy), Plug-in above Full ZS
// (fine-tuning through the emulator helps), Plug-in above OT Emulator (the privacy gap).
const std::vector<PatternCheck>& pattern_checks();

// One run's margins of the three checks on one task metric (positive = the ordering holds).
struct PatternMargins {
  std::string task, metric;
  double emulator_below_full = 0.0, plugin_above_full = 0.0, plugin_above_ft_emulator = 0.0;
  bool holds() const { return emulator_below_full > 0 && plugin_above_full > 0 && plugin_above_ft_emulator > 0; }
};
// From one run's (setting, result) rows: per (task, metric) in first-seen order that has all of
// zs_full, zs_emulator, ft_emulator and plugin; loss and byte_perplexity are skipped (they
// repeat perplexity and bits_per_byte). A later row for the same setting replaces an earlier.
std::vector<PatternMargins> pattern_margins(const std::vector<std::pair<std::string, TaskResult>>& rows);

// The vocabulary for readers outside C++ (summary.json "vocabulary"): settings and tasks in the
// paper's order with their labels, the pattern checks, and for each of `metrics` whether it is
// an accuracy and whether lower is better.
nlohmann::json vocabulary_json(const std::vector<std::string>& metrics);

}  // namespace ot
