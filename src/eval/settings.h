// eval/settings.h: the five evaluation settings of the Offsite-Tuning paper
// (../shared/PAPER.md 2.4: zs_full, zs_emulator, ft_emulator, plugin, ft_full), the privacy
// gap between plug-in and emulator fine-tuning (PAPER.md 2.5), and the two ways results are
// written: the harness's make_table markdown (Task | Version | Metric | Value | ± | Stderr,
// values "%.4f") and its results JSON {"results", "versions", "config"}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/harness.h"

namespace ot {

enum class Setting {
  kZsFull,      // the original model, zero-shot
  kZsEmulator,  // adapter + emulator (the bundle), zero-shot
  kFtEmulator,  // adapter fine-tuned on the emulator, evaluated with the emulator
  kPlugin,      // that fine-tuned adapter plugged into the full model
  kFtFull,      // the whole model fine-tuned
};

const std::vector<Setting>& all_settings();
std::string setting_name(Setting s);         // "zs_full", ...
std::string setting_description(Setting s);  // the paper's row label, e.g. "OT Plug-in"
// Throws ot::Error listing the valid names.
Setting parse_setting(const std::string& name);

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

// Whether a metric improves downwards (perplexities, bits per byte).
bool lower_is_better(const std::string& metric);

// The harness's make_table: one row per metric, the task name and version on a task's
// first row only, "%.4f" values, "±" and the stderr where there is one.
std::string make_table(const std::vector<TaskResult>& results);

// {"results": {task: {metric: v, metric_stderr: s}}, "versions": {task: v}, "config": config}.
nlohmann::json results_json(const std::vector<TaskResult>& results, const nlohmann::json& config = nlohmann::json::object());

}  // namespace ot
