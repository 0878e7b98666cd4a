// experiment/sweep.h: from one resolved configuration to the runs it stands for. A `[sweep]`
// section multiplies the configuration: `grid` (every combination of the listed values),
// `zip` groups (keys varied together, value i of each key in run i) and `seeds`
// (experiment.seed). Each run's configuration is resolved and validated again, and named by a
// run id derived from its contents (FNV-1a over the resolved TOML minus the keys that do not
// change results: runtime, directories, labels), so a run keeps its id and its result file
// when the sweep is edited around it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "experiment/config.h"

namespace ot::experiment {

struct PlannedRun {
  std::string run_id;
  Config config;  // resolved, without [sweep]
  std::vector<std::pair<std::string, std::string>> params;  // swept key -> value (TOML text)
  std::string result_path;  // <results_dir>/<experiment>/<run_id>.h5
};

// One run for a configuration without `[sweep]`; throws ot::Error for a sweep with zero runs
// or two runs with the same configuration.
std::vector<PlannedRun> plan_runs(const Config& c);

// The run id of a resolved configuration (12 hex digits) and the id shared by runs that differ
// only in experiment.seed (for averaging over seeds).
std::string run_id_of(const Config& c);
std::string group_id_of(const Config& c);

// `params` as a JSON object text, values as TOML wrote them.
std::string params_json(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace ot::experiment
