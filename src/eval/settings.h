// eval/settings.h: the privacy gap between plug-in and emulator fine-tuning
// (../shared/PAPER.md 2.5) and the two ways results are written: the harness's make_table
// markdown (Task | Version | Metric | Value | ± | Stderr, values "%.4f") and its results JSON
// {"results", "versions", "config"}. The settings themselves, their labels and each metric's
// direction are the paper's vocabulary (eval/vocabulary.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/harness.h"
#include "eval/vocabulary.h"

namespace ot {

// Plug-in minus emulator fine-tuning for one task metric. Positive on accuracies means the
// emulator alone cannot reach the plug-in (the privacy criterion); for perplexities
// (lower is better) the sign is flipped in `gap` so that positive means the same thing.
struct PrivacyGap {
  std::string task, metric;
  double plugin = 0.0, ft_emulator = 0.0;
  double gap = 0.0;
};

// Matches rows by (task, metric); rows present in only one list are skipped.
std::vector<PrivacyGap> privacy_gap(const std::vector<TaskResult>& plugin, const std::vector<TaskResult>& ft_emulator);
// Mean gap over the rows whose metric is `metric` (the follow-ups average acc over 8 tasks);
// throws ot::Error when there is none.
double mean_privacy_gap(const std::vector<PrivacyGap>& gaps, const std::string& metric = "acc");

// The harness's make_table: one row per metric, the task name and version on a task's
// first row only, "%.4f" values, "±" and the stderr where there is one.
std::string make_table(const std::vector<TaskResult>& results);

// {"results": {task: {metric: v, metric_stderr: s}}, "versions": {task: v}, "config": config}.
nlohmann::json results_json(const std::vector<TaskResult>& results, const nlohmann::json& config = nlohmann::json::object());

}  // namespace ot
