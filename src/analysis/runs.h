// analysis/runs.h: collecting the run files of a results directory for `ot analyze`.
// Defines RunData (what the analysis needs from one completed run file), SkippedRun (a run
// that did not complete, and why) and collect_runs, which reads every *.h5 under a
// directory, keeps completed runs, lists the others and counts the temporaries that killed
// writers left behind (.<run-id>.h5.tmp.<pid>, results/SCHEMA.md).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "results/run_file.h"

namespace ot::analysis {

// One completed run, with the attributes `ot run` sets (results/SCHEMA.md plus label,
// group_id, recipe, sweep_params, paper_table, seed) resolved to defaults where absent.
struct RunData {
  std::string path;      // as found under the results directory
  std::string rel_path;  // relative to the results directory, e.g. "table1/opt_seed1.h5"
  std::string run_id, experiment;
  std::string label;        // root attribute `label`, else the experiment, else the run id
  std::string group_id;     // root attribute `group_id`, else the label
  std::string recipe;       // root attribute `recipe`, else empty
  std::string paper_table;  // root attribute `paper_table`, e.g. "table1:opt-1.3b", else empty
  std::optional<std::int64_t> seed;  // attribute `seed`, else the seed key of sweep_params
  nlohmann::json sweep_params = nlohmann::json::object();  // swept key -> value
  std::vector<results::EvalRow> eval;
  std::vector<results::EfficiencyEntry> efficiency;
  std::vector<std::string> curves;  // curve names (/curves/<name>), sorted
  // The CKA matrix of a CKA layer selection (attribute cka_similarity: {"blocks", "matrix",
  // "kept"}), else null.
  nlohmann::json cka;
};

// A run file that reads but whose run did not complete.
struct SkippedRun {
  std::string path;      // as found
  std::string rel_path;  // relative to the results directory
  std::string reason;  // "status running" or "status failed: <error>"
};

struct RunCollection {
  std::string root;                  // the results directory
  std::vector<RunData> runs;         // completed runs, ordered by relative path
  std::vector<SkippedRun> skipped;   // ordered by relative path
  std::vector<std::string> ignored;  // leftover temporaries (.*.tmp.*), ordered
};

// Whether a sweep key names the seed ("seed", "experiment.seed", "<section>.seed").
bool is_seed_key(const std::string& key);

// Reads every regular file named *.h5 under `dir` (recursively, in path order). A file
// that is not a readable run file of this schema version throws ot::Error naming it; so
// do attributes of the wrong type (e.g. sweep_params that is not a JSON object).
RunCollection collect_runs(const std::string& dir);

}  // namespace ot::analysis
