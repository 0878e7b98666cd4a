// tests/unit/test_analysis.cpp: `ot analyze` on a results directory built with RunRecorder
// (two groups of seeds, a failed run, a running run, a leftover temporary): the exact
// Markdown and CSV, errors for a file of another schema version and for corrupt input,
// the figures (python3 with matplotlib must be there: the test fails, not skips, without),
// the published numbers, and aggregation over seeds.
#include <H5Cpp.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "analysis/paper.h"
#include "analysis/tables.h"
#include "results/run_file.h"
#include "test_support.h"

namespace ot::analysis {
namespace {

using ot::test::expect_error;
using ot::test::run_cli;
using ot::test::TempDir;

using ot::test::slurp;

// The attributes `ot run` writes, and how the run ends.
struct RunSpec {
  std::string rel;  // under the results directory
  std::string label, group_id, paper_table;
  std::int64_t seed = 1;
  nlohmann::json sweep;
  enum End { kCompleted, kFailed, kRunning } end = kCompleted;
};

// One evaluation row (setting, task, metric, value, stderr).
struct Ev {
  std::string setting, task, metric;
  double value, stderr_value = 0;
};

// `cka`: the attribute cka_similarity, unless null.
void write_run(const std::string& root, const RunSpec& spec, const std::vector<Ev>& eval,
               const std::vector<std::pair<std::string, double>>& efficiency = {}, bool curves = false,
               const nlohmann::json& cka = nullptr) {
  results::RunInfo info;
  info.run_id = std::filesystem::path(spec.rel).stem().string();
  info.experiment = std::filesystem::path(spec.rel).parent_path().string();
  info.config_toml = "[experiment]\nseed = " + std::to_string(spec.seed) + "\n";
  info.command_line = "ot run";
  info.libtorch_version = "test";
  results::RunRecorder rec(root + "/" + spec.rel, info);
  rec.set_attribute("recipe", "offsite");
  rec.set_attribute("label", spec.label);
  rec.set_attribute("group_id", spec.group_id);
  rec.set_attribute("sweep_params", spec.sweep.dump());
  if (!spec.paper_table.empty()) rec.set_attribute("paper_table", spec.paper_table);
  rec.set_attribute("seed", spec.seed);
  if (!cka.is_null()) rec.set_attribute("cka_similarity", cka.dump());
  if (curves) {
    for (int step = 0; step < 4; ++step) {
      const double s = static_cast<double>(step);
      rec.add_curve_row("distill", {{"step", s * 10}, {"loss", 4.0 - s * 0.5 + 0.01 * spec.seed}, {"lr", 1e-4}});
      rec.add_curve_row("finetune", {{"step", s * 5}, {"loss", 3.0 - s * 0.25}, {"lr", 2e-5}});
    }
    rec.add_curve_row("finetune_eval", {{"step", 20}, {"acc", 0.5 + 0.01 * spec.seed}});
  }
  for (const Ev& e : eval) rec.add_eval({e.setting, e.task, e.metric, e.value, e.stderr_value, 500});
  for (const auto& [name, value] : efficiency) {
    rec.set_efficiency(name, value, name.find("params") != std::string::npos ? "parameters"
                                    : name == "tokens_per_s"                  ? "tokens/s"
                                                                              : "MiB");
  }
  if (spec.end == RunSpec::kCompleted) rec.complete();
  if (spec.end == RunSpec::kFailed) rec.fail("CUDA out of memory\nat step 12");
  // kRunning: the recorder's destructor leaves the file with status "running".
}

// Group A: OPT-1.3B 2-8-2 with the paper's Table 1 numbers, seeds 1 and 2 at -/+ 1 point (and
// -/+ 0.1 perplexity), so that every mean is the published number and every sem is 1.0.
// Group B: 2-4-2, seeds 1-3, three tasks and a held-out corpus; one check fails.
void build_results(const std::string& root) {
  const std::vector<std::string> tasks = {"openbookqa", "piqa", "arc_easy", "arc_challenge", "hellaswag",
                                          "sciq",       "webqs", "race",    "wikitext"};
  const std::map<std::string, std::vector<double>> paper = {
      {"zs_full", {23.4, 71.6, 56.9, 23.5, 41.5, 84.4, 4.6, 34.2, 31.48}},
      {"zs_emulator", {19.4, 68.7, 53.9, 21.5, 35.1, 80.9, 1.3, 33.0, 38.55}},
      {"ft_full", {31.4, 75.2, 61.3, 27.7, 42.7, 92.5, 31.2, 37.0, 12.52}},
      {"ft_emulator", {24.8, 71.6, 58.1, 26.1, 37.0, 92.2, 24.3, 38.6, 15.54}},
      {"plugin", {29.0, 74.5, 59.4, 27.8, 43.3, 92.9, 26.2, 38.9, 13.15}},
  };
  for (std::int64_t seed : {1, 2}) {
    const double d = seed == 1 ? -1.0 : 1.0;
    std::vector<Ev> eval;
    for (const char* setting : {"zs_full", "zs_emulator", "ft_full", "ft_emulator", "plugin"}) {
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        const double v = paper.at(setting)[i];
        if (tasks[i] == "wikitext") {
          eval.push_back({setting, tasks[i], "perplexity", v + 0.1 * d});
        } else {
          eval.push_back({setting, tasks[i], "acc", (v + d) / 100.0, 0.01});
          if (tasks[i] == "piqa") eval.push_back({setting, tasks[i], "acc_norm", (v + 5 + d) / 100.0, 0.01});
        }
      }
    }
    RunSpec spec{"table1/opt-1.3b-2-8-2_seed" + std::to_string(seed) + ".h5", "OPT-1.3B (2-8-2 Distill)", "g282",
                 "table1:opt-1.3b", seed, {{"emulator.layers", 8}, {"experiment.seed", seed}}};
    write_run(root, spec, eval,
              {{"tokens_per_s", 5100 + 200 * d}, {"peak_memory_mib", 9000 + 2 * d},
               {"trainable_params", 201326592}, {"total_params", 1315758080}},
              /*curves=*/true);
  }
  RunSpec failed{"table1/opt-1.3b-2-8-2_seed3.h5", "OPT-1.3B (2-8-2 Distill)", "g282", "table1:opt-1.3b", 3,
                 {{"emulator.layers", 8}, {"experiment.seed", 3}}, RunSpec::kFailed};
  write_run(root, failed, {{"zs_full", "piqa", "acc", 0.1}});
  RunSpec running{"table1/opt-1.3b-2-8-2_seed4.h5", "OPT-1.3B (2-8-2 Distill)", "g282", "table1:opt-1.3b", 4,
                  {{"emulator.layers", 8}, {"experiment.seed", 4}}, RunSpec::kRunning};
  write_run(root, running, {{"zs_full", "piqa", "acc", 0.1}});
  ot::test::write_file(root + "/table1/.opt-1.3b-2-8-2_seed5.h5.tmp.4242", "half a file");

  const std::map<std::string, std::vector<double>> b = {
      {"zs_full/piqa", {0.716, 0.716, 0.716}},    {"zs_emulator/piqa", {0.60, 0.61, 0.62}},
      {"ft_emulator/piqa", {0.65, 0.66, 0.67}},   {"plugin/piqa", {0.73, 0.74, 0.75}},
      {"zs_full/arc_easy", {0.569, 0.569, 0.569}}, {"zs_emulator/arc_easy", {0.50, 0.51, 0.52}},
      {"ft_emulator/arc_easy", {0.54, 0.545, 0.55}}, {"plugin/arc_easy", {0.55, 0.56, 0.57}},
      {"zs_full/brown_j", {20.0, 20.1, 20.2}},    {"zs_emulator/brown_j", {30.0, 30.2, 30.4}},
      {"ft_emulator/brown_j", {25.0, 25.0, 25.0}}, {"plugin/brown_j", {22.0, 22.05, 22.1}},
  };
  for (std::int64_t seed : {1, 2, 3}) {
    std::vector<Ev> eval;
    for (const auto& [key, values] : b) {
      const std::string setting = key.substr(0, key.find('/')), task = key.substr(key.find('/') + 1);
      eval.push_back({setting, task, task == "brown_j" ? "perplexity" : "acc", values[seed - 1]});
    }
    eval.push_back({"plugin", "brown_j", "loss", 2.9 + 0.1 * static_cast<double>(seed)});
    if (seed == 1) {
      eval.push_back({"plugin", "hellaswag", "acc", 0.40, 0.005});
      eval.push_back({"distilled_emulator", "brown_j", "perplexity", 27.5});
    }
    RunSpec spec{"sweep/opt-1.3b-2-4-2_seed" + std::to_string(seed) + ".h5", "OPT-1.3B (2-4-2 Distill)", "g242", "",
                 seed, {{"emulator.layers", 4}, {"experiment.seed", seed}}};
    nlohmann::json cka;
    if (seed == 1) {  // a CKA selection of 4 of the middle blocks 2..7
      cka = {{"blocks", {2, 3, 4, 5, 6, 7}}, {"kept", {2, 4, 5, 7}}, {"matrix", nlohmann::json::array()}};
      for (int i = 0; i < 6; ++i) {
        nlohmann::json row = nlohmann::json::array();
        for (int j = 0; j < 6; ++j) row.push_back(1.0 - 0.1 * std::abs(i - j));
        cka["matrix"].push_back(row);
      }
    }
    write_run(root, spec, eval, {}, /*curves=*/seed == 1, cka);
  }
}

// A file that looks like a run file of another schema version (as test_results.cpp does).
void write_other_schema(const std::string& path, std::int64_t version) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  H5::H5File f(path, H5F_ACC_TRUNC);
  H5::Attribute a = f.createAttribute("schema_version", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_INT64, &version);
  H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
  H5::Attribute s = f.createAttribute("status", st, H5::DataSpace(H5S_SCALAR));
  s.write(st, std::string("completed"));
}

// What `ot analyze` prints for build_results() (checked by hand: every group-A mean is the
// published number, sem 1.0 point / 0.10 perplexity; averages 42.5, 39.2, 49.9, 46.6, 49.0 as in
// PAPER.md; group B's Plug-in loses to Full ZS on ARC-E and brown_j).
const char* kExpectedMarkdown = R"md(# Offsite-tuning results

5 completed runs in 2 groups. A cell is the mean over the group's runs (seeds) ± the standard error of the mean; with one run, ± the harness's standard error where it reported one. "(n=K)": only K of the group's runs have the cell. Accuracies (acc where a task has it) in %, other metrics as recorded. Privacy gap: OT Plug-in minus OT Emulator (for lower-is-better metrics Emulator minus Plug-in), so positive means the plug-in is better; the utility-lost rows likewise compare the full model with the emulator alone (Full ZS minus Emulator ZS, FT minus OT Emulator). A difference is the mean of the runs' own differences ± their standard error where every run has both cells. Avg (8): the mean over the eight tasks, WikiText excluded.

## OPT-1.3B (2-4-2 Distill)

3 runs; seeds 1, 2, 3; recipe offsite; emulator.layers = 4

| Setting | PIQA | ARC-E | HellaSwag | brown_j ppl |
|---|---:|---:|---:|---:|
| Full ZS | 71.6 ± 0.0 | 56.9 ± 0.0 | – | 20.10 ± 0.06 |
| Emulator ZS | 61.0 ± 0.6 | 51.0 ± 0.6 | – | 30.20 ± 0.12 |
| OT Emulator | 66.0 ± 0.6 | 54.5 ± 0.3 | – | 25.00 ± 0.00 |
| OT Plug-in | 74.0 ± 0.6 | 56.0 ± 0.6 | 40.0 ± 0.5 (n=1) | 22.05 ± 0.03 |
| distilled_emulator | – | – | – | 27.50 (n=1) |
| Privacy gap (Plug-in minus OT Emulator) | +8.0 ± 0.0 | +1.5 ± 0.3 | – | +2.95 ± 0.03 |
| Emulator ZS utility lost (Full ZS minus Emulator ZS) | +10.6 ± 0.6 | +5.9 ± 0.6 | – | +10.10 ± 0.06 |

Checks (PAPER.md 2.5; a positive margin of the means says the paper's pattern holds; (k/n): it holds in k of the n runs; Holds: the columns where the means hold):

| Check | PIQA | ARC-E | HellaSwag | brown_j ppl | Holds |
|---|---:|---:|---:|---:|---:|
| Emulator ZS below Full ZS | +10.6 ✓ (3/3) | +5.9 ✓ (3/3) | – | +10.10 ✓ (3/3) | 3/3 |
| Plug-in above Full ZS | +2.4 ✓ (3/3) | -0.9 ✗ (1/3) | – | -1.95 ✗ (0/3) | 1/3 |
| Plug-in above OT Emulator | +8.0 ✓ (3/3) | +1.5 ✓ (3/3) | – | +2.95 ✓ (3/3) | 3/3 |

## OPT-1.3B (2-8-2 Distill)

2 runs; seeds 1, 2; recipe offsite; emulator.layers = 8; paper table1:opt-1.3b

| Setting | OBQA | PIQA | ARC-E | ARC-C | HellaSwag | SciQ | WebQs | RACE | WikiText ppl | Avg (8) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| Full ZS | 23.4 ± 1.0 | 71.6 ± 1.0 | 56.9 ± 1.0 | 23.5 ± 1.0 | 41.5 ± 1.0 | 84.4 ± 1.0 | 4.6 ± 1.0 | 34.2 ± 1.0 | 31.48 ± 0.10 | 42.5 ± 1.0 |
| Emulator ZS | 19.4 ± 1.0 | 68.7 ± 1.0 | 53.9 ± 1.0 | 21.5 ± 1.0 | 35.1 ± 1.0 | 80.9 ± 1.0 | 1.3 ± 1.0 | 33.0 ± 1.0 | 38.55 ± 0.10 | 39.2 ± 1.0 |
| FT | 31.4 ± 1.0 | 75.2 ± 1.0 | 61.3 ± 1.0 | 27.7 ± 1.0 | 42.7 ± 1.0 | 92.5 ± 1.0 | 31.2 ± 1.0 | 37.0 ± 1.0 | 12.52 ± 0.10 | 49.9 ± 1.0 |
| OT Emulator | 24.8 ± 1.0 | 71.6 ± 1.0 | 58.1 ± 1.0 | 26.1 ± 1.0 | 37.0 ± 1.0 | 92.2 ± 1.0 | 24.3 ± 1.0 | 38.6 ± 1.0 | 15.54 ± 0.10 | 46.6 ± 1.0 |
| OT Plug-in | 29.0 ± 1.0 | 74.5 ± 1.0 | 59.4 ± 1.0 | 27.8 ± 1.0 | 43.3 ± 1.0 | 92.9 ± 1.0 | 26.2 ± 1.0 | 38.9 ± 1.0 | 13.15 ± 0.10 | 49.0 ± 1.0 |
| Privacy gap (Plug-in minus OT Emulator) | +4.2 ± 0.0 | +2.9 ± 0.0 | +1.3 ± 0.0 | +1.7 ± 0.0 | +6.3 ± 0.0 | +0.7 ± 0.0 | +1.9 ± 0.0 | +0.3 ± 0.0 | +2.39 ± 0.00 | +2.4 ± 0.0 |
| Emulator ZS utility lost (Full ZS minus Emulator ZS) | +4.0 ± 0.0 | +2.9 ± 0.0 | +3.0 ± 0.0 | +2.0 ± 0.0 | +6.4 ± 0.0 | +3.5 ± 0.0 | +3.3 ± 0.0 | +1.2 ± 0.0 | +7.07 ± 0.00 | +3.3 ± 0.0 |
| OT Emulator utility lost (FT minus OT Emulator) | +6.6 ± 0.0 | +3.6 ± 0.0 | +3.2 ± 0.0 | +1.6 ± 0.0 | +5.7 ± 0.0 | +0.3 ± 0.0 | +6.9 ± 0.0 | -1.6 ± 0.0 | +3.02 ± 0.00 | +3.3 ± 0.0 |

Checks (PAPER.md 2.5; a positive margin of the means says the paper's pattern holds; (k/n): it holds in k of the n runs; Holds: the columns where the means hold):

| Check | OBQA | PIQA | ARC-E | ARC-C | HellaSwag | SciQ | WebQs | RACE | WikiText ppl | Avg (8) | Holds |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| Emulator ZS below Full ZS | +4.0 ✓ (2/2) | +2.9 ✓ (2/2) | +3.0 ✓ (2/2) | +2.0 ✓ (2/2) | +6.4 ✓ (2/2) | +3.5 ✓ (2/2) | +3.3 ✓ (2/2) | +1.2 ✓ (2/2) | +7.07 ✓ (2/2) | +3.3 ✓ | 9/9 |
| Plug-in above Full ZS | +5.6 ✓ (2/2) | +2.9 ✓ (2/2) | +2.5 ✓ (2/2) | +4.3 ✓ (2/2) | +1.8 ✓ (2/2) | +8.5 ✓ (2/2) | +21.6 ✓ (2/2) | +4.7 ✓ (2/2) | +18.33 ✓ (2/2) | +6.5 ✓ | 9/9 |
| Plug-in above OT Emulator | +4.2 ✓ (2/2) | +2.9 ✓ (2/2) | +1.3 ✓ (2/2) | +1.7 ✓ (2/2) | +6.3 ✓ (2/2) | +0.7 ✓ (2/2) | +1.9 ✓ (2/2) | +0.3 ✓ (2/2) | +2.39 ✓ (2/2) | +2.4 ✓ | 9/9 |

Published (PAPER.md Table 1, opt-1.3b):

| Setting | OBQA | PIQA | ARC-E | ARC-C | HellaSwag | SciQ | WebQs | RACE | WikiText ppl | Avg (8) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| Full ZS | 23.4 | 71.6 | 56.9 | 23.5 | 41.5 | 84.4 | 4.6 | 34.2 | 31.48 | 42.5 |
| Emulator ZS | 19.4 | 68.7 | 53.9 | 21.5 | 35.1 | 80.9 | 1.3 | 33.0 | 38.55 | 39.2 |
| FT | 31.4 | 75.2 | 61.3 | 27.7 | 42.7 | 92.5 | 31.2 | 37.0 | 12.52 | 49.9 |
| OT Emulator | 24.8 | 71.6 | 58.1 | 26.1 | 37.0 | 92.2 | 24.3 | 38.6 | 15.54 | 46.6 |
| OT Plug-in | 29.0 | 74.5 | 59.4 | 27.8 | 43.3 | 92.9 | 26.2 | 38.9 | 13.15 | 49.0 |
| Privacy gap (Plug-in minus OT Emulator) | +4.2 | +2.9 | +1.3 | +1.7 | +6.3 | +0.7 | +1.9 | +0.3 | +2.39 | +2.4 |
| Emulator ZS utility lost (Full ZS minus Emulator ZS) | +4.0 | +2.9 | +3.0 | +2.0 | +6.4 | +3.5 | +3.3 | +1.2 | +7.07 | +3.3 |
| OT Emulator utility lost (FT minus OT Emulator) | +6.6 | +3.6 | +3.2 | +1.6 | +5.7 | +0.3 | +6.9 | -1.6 | +3.02 | +3.3 |

## Privacy and utility

What the data owner's emulator can do alone against what the plug-in gives: per group, the 8-task average where it has one, else each task. Privacy gap: OT Plug-in minus OT Emulator; utility lost: the full model minus the emulator, zero-shot and fine-tuned (positive: the emulator is worse, as offsite-tuning needs). Differences are the mean of the runs' own differences ± its sem where every run has both cells.

| Group | Task | OT Plug-in | Emulator ZS | OT Emulator | Full ZS | FT | Privacy gap (Plug-in minus OT Emulator) | Emulator ZS utility lost (Full ZS minus Emulator ZS) | OT Emulator utility lost (FT minus OT Emulator) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| OPT-1.3B (2-4-2 Distill) | PIQA | 74.0 ± 0.6 | 61.0 ± 0.6 | 66.0 ± 0.6 | 71.6 ± 0.0 | – | +8.0 ± 0.0 | +10.6 ± 0.6 | – |
| OPT-1.3B (2-4-2 Distill) | ARC-E | 56.0 ± 0.6 | 51.0 ± 0.6 | 54.5 ± 0.3 | 56.9 ± 0.0 | – | +1.5 ± 0.3 | +5.9 ± 0.6 | – |
| OPT-1.3B (2-4-2 Distill) | HellaSwag | 40.0 ± 0.5 (n=1) | – | – | – | – | – | – | – |
| OPT-1.3B (2-4-2 Distill) | brown_j ppl | 22.05 ± 0.03 | 30.20 ± 0.12 | 25.00 ± 0.00 | 20.10 ± 0.06 | – | +2.95 ± 0.03 | +10.10 ± 0.06 | – |
| OPT-1.3B (2-8-2 Distill) | Avg (8) | 49.0 ± 1.0 | 39.2 ± 1.0 | 46.6 ± 1.0 | 42.5 ± 1.0 | 49.9 ± 1.0 | +2.4 ± 0.0 | +3.3 ± 0.0 | +3.3 ± 0.0 |

## Efficiency

| Group | Tokens/s | Peak memory (MiB) | Trainable params | Total params |
|---|---:|---:|---:|---:|
| OPT-1.3B (2-8-2 Distill) | 5100 ± 200 | 9000 ± 2 | 201.3M | 1.32B |

## Not included

- `table1/opt-1.3b-2-8-2_seed3.h5`: status failed: CUDA out of memory
- `table1/opt-1.3b-2-8-2_seed4.h5`: status running
- 1 leftover temporary file of killed writers: `table1/.opt-1.3b-2-8-2_seed5.h5.tmp.4242`
)md";

const char* kExpectedCsv = R"csv(group,setting,task,metric,mean,sem,n_seeds,paper
OPT-1.3B (2-4-2 Distill),zs_full,piqa,acc,0.716,0,3,
OPT-1.3B (2-4-2 Distill),zs_full,arc_easy,acc,0.569,0,3,
OPT-1.3B (2-4-2 Distill),zs_full,brown_j,perplexity,20.1,0.05773502692,3,
OPT-1.3B (2-4-2 Distill),zs_emulator,piqa,acc,0.61,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),zs_emulator,arc_easy,acc,0.51,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),zs_emulator,brown_j,perplexity,30.2,0.1154700538,3,
OPT-1.3B (2-4-2 Distill),ft_emulator,piqa,acc,0.66,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),ft_emulator,arc_easy,acc,0.545,0.002886751346,3,
OPT-1.3B (2-4-2 Distill),ft_emulator,brown_j,perplexity,25,0,3,
OPT-1.3B (2-4-2 Distill),plugin,piqa,acc,0.74,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),plugin,arc_easy,acc,0.56,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),plugin,hellaswag,acc,0.4,0.005,1,
OPT-1.3B (2-4-2 Distill),plugin,brown_j,perplexity,22.05,0.02886751346,3,
OPT-1.3B (2-4-2 Distill),plugin,brown_j,loss,3.1,0.05773502692,3,
OPT-1.3B (2-4-2 Distill),distilled_emulator,brown_j,perplexity,27.5,,1,
OPT-1.3B (2-4-2 Distill),privacy_gap,piqa,acc,0.08,0,3,
OPT-1.3B (2-4-2 Distill),privacy_gap,arc_easy,acc,0.015,0.002886751346,3,
OPT-1.3B (2-4-2 Distill),privacy_gap,brown_j,perplexity,2.95,0.02886751346,3,
OPT-1.3B (2-4-2 Distill),zs_emulator_gap,piqa,acc,0.106,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),zs_emulator_gap,arc_easy,acc,0.059,0.005773502692,3,
OPT-1.3B (2-4-2 Distill),zs_emulator_gap,brown_j,perplexity,10.1,0.05773502692,3,
OPT-1.3B (2-8-2 Distill),zs_full,openbookqa,acc,0.234,0.01,2,0.234
OPT-1.3B (2-8-2 Distill),zs_full,piqa,acc,0.716,0.01,2,0.716
OPT-1.3B (2-8-2 Distill),zs_full,piqa,acc_norm,0.766,0.01,2,
OPT-1.3B (2-8-2 Distill),zs_full,arc_easy,acc,0.569,0.01,2,0.569
OPT-1.3B (2-8-2 Distill),zs_full,arc_challenge,acc,0.235,0.01,2,0.235
OPT-1.3B (2-8-2 Distill),zs_full,hellaswag,acc,0.415,0.01,2,0.415
OPT-1.3B (2-8-2 Distill),zs_full,sciq,acc,0.844,0.01,2,0.844
OPT-1.3B (2-8-2 Distill),zs_full,webqs,acc,0.046,0.01,2,0.046
OPT-1.3B (2-8-2 Distill),zs_full,race,acc,0.342,0.01,2,0.342
OPT-1.3B (2-8-2 Distill),zs_full,wikitext,perplexity,31.48,0.1,2,31.48
OPT-1.3B (2-8-2 Distill),zs_emulator,openbookqa,acc,0.194,0.01,2,0.194
OPT-1.3B (2-8-2 Distill),zs_emulator,piqa,acc,0.687,0.01,2,0.687
OPT-1.3B (2-8-2 Distill),zs_emulator,piqa,acc_norm,0.737,0.01,2,
OPT-1.3B (2-8-2 Distill),zs_emulator,arc_easy,acc,0.539,0.01,2,0.539
OPT-1.3B (2-8-2 Distill),zs_emulator,arc_challenge,acc,0.215,0.01,2,0.215
OPT-1.3B (2-8-2 Distill),zs_emulator,hellaswag,acc,0.351,0.01,2,0.351
OPT-1.3B (2-8-2 Distill),zs_emulator,sciq,acc,0.809,0.01,2,0.809
OPT-1.3B (2-8-2 Distill),zs_emulator,webqs,acc,0.013,0.01,2,0.013
OPT-1.3B (2-8-2 Distill),zs_emulator,race,acc,0.33,0.01,2,0.33
OPT-1.3B (2-8-2 Distill),zs_emulator,wikitext,perplexity,38.55,0.1,2,38.55
OPT-1.3B (2-8-2 Distill),ft_full,openbookqa,acc,0.314,0.01,2,0.314
OPT-1.3B (2-8-2 Distill),ft_full,piqa,acc,0.752,0.01,2,0.752
OPT-1.3B (2-8-2 Distill),ft_full,piqa,acc_norm,0.802,0.01,2,
OPT-1.3B (2-8-2 Distill),ft_full,arc_easy,acc,0.613,0.01,2,0.613
OPT-1.3B (2-8-2 Distill),ft_full,arc_challenge,acc,0.277,0.01,2,0.277
OPT-1.3B (2-8-2 Distill),ft_full,hellaswag,acc,0.427,0.01,2,0.427
OPT-1.3B (2-8-2 Distill),ft_full,sciq,acc,0.925,0.01,2,0.925
OPT-1.3B (2-8-2 Distill),ft_full,webqs,acc,0.312,0.01,2,0.312
OPT-1.3B (2-8-2 Distill),ft_full,race,acc,0.37,0.01,2,0.37
OPT-1.3B (2-8-2 Distill),ft_full,wikitext,perplexity,12.52,0.1,2,12.52
OPT-1.3B (2-8-2 Distill),ft_emulator,openbookqa,acc,0.248,0.01,2,0.248
OPT-1.3B (2-8-2 Distill),ft_emulator,piqa,acc,0.716,0.01,2,0.716
OPT-1.3B (2-8-2 Distill),ft_emulator,piqa,acc_norm,0.766,0.01,2,
OPT-1.3B (2-8-2 Distill),ft_emulator,arc_easy,acc,0.581,0.01,2,0.581
OPT-1.3B (2-8-2 Distill),ft_emulator,arc_challenge,acc,0.261,0.01,2,0.261
OPT-1.3B (2-8-2 Distill),ft_emulator,hellaswag,acc,0.37,0.01,2,0.37
OPT-1.3B (2-8-2 Distill),ft_emulator,sciq,acc,0.922,0.01,2,0.922
OPT-1.3B (2-8-2 Distill),ft_emulator,webqs,acc,0.243,0.01,2,0.243
OPT-1.3B (2-8-2 Distill),ft_emulator,race,acc,0.386,0.01,2,0.386
OPT-1.3B (2-8-2 Distill),ft_emulator,wikitext,perplexity,15.54,0.1,2,15.54
OPT-1.3B (2-8-2 Distill),plugin,openbookqa,acc,0.29,0.01,2,0.29
OPT-1.3B (2-8-2 Distill),plugin,piqa,acc,0.745,0.01,2,0.745
OPT-1.3B (2-8-2 Distill),plugin,piqa,acc_norm,0.795,0.01,2,
OPT-1.3B (2-8-2 Distill),plugin,arc_easy,acc,0.594,0.01,2,0.594
OPT-1.3B (2-8-2 Distill),plugin,arc_challenge,acc,0.278,0.01,2,0.278
OPT-1.3B (2-8-2 Distill),plugin,hellaswag,acc,0.433,0.01,2,0.433
OPT-1.3B (2-8-2 Distill),plugin,sciq,acc,0.929,0.01,2,0.929
OPT-1.3B (2-8-2 Distill),plugin,webqs,acc,0.262,0.01,2,0.262
OPT-1.3B (2-8-2 Distill),plugin,race,acc,0.389,0.01,2,0.389
OPT-1.3B (2-8-2 Distill),plugin,wikitext,perplexity,13.15,0.1,2,13.15
OPT-1.3B (2-8-2 Distill),privacy_gap,openbookqa,acc,0.042,0,2,0.042
OPT-1.3B (2-8-2 Distill),privacy_gap,piqa,acc,0.029,0,2,0.029
OPT-1.3B (2-8-2 Distill),privacy_gap,arc_easy,acc,0.013,0,2,0.013
OPT-1.3B (2-8-2 Distill),privacy_gap,arc_challenge,acc,0.017,0,2,0.017
OPT-1.3B (2-8-2 Distill),privacy_gap,hellaswag,acc,0.063,0,2,0.063
OPT-1.3B (2-8-2 Distill),privacy_gap,sciq,acc,0.007,0,2,0.007
OPT-1.3B (2-8-2 Distill),privacy_gap,webqs,acc,0.019,0,2,0.019
OPT-1.3B (2-8-2 Distill),privacy_gap,race,acc,0.003,0,2,0.003
OPT-1.3B (2-8-2 Distill),privacy_gap,wikitext,perplexity,2.39,0,2,2.39
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,openbookqa,acc,0.04,0,2,0.04
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,piqa,acc,0.029,0,2,0.029
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,arc_easy,acc,0.03,0,2,0.03
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,arc_challenge,acc,0.02,0,2,0.02
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,hellaswag,acc,0.064,0,2,0.064
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,sciq,acc,0.035,0,2,0.035
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,webqs,acc,0.033,0,2,0.033
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,race,acc,0.012,0,2,0.012
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,wikitext,perplexity,7.07,0,2,7.07
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,openbookqa,acc,0.066,0,2,0.066
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,piqa,acc,0.036,0,2,0.036
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,arc_easy,acc,0.032,0,2,0.032
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,arc_challenge,acc,0.016,0,2,0.016
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,hellaswag,acc,0.057,0,2,0.057
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,sciq,acc,0.003,0,2,0.003
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,webqs,acc,0.069,0,2,0.069
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,race,acc,-0.016,0,2,-0.016
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,wikitext,perplexity,3.02,0,2,3.02
OPT-1.3B (2-8-2 Distill),zs_full,average_8,acc,0.425125,0.01,2,0.425125
OPT-1.3B (2-8-2 Distill),zs_emulator,average_8,acc,0.39225,0.01,2,0.39225
OPT-1.3B (2-8-2 Distill),ft_full,average_8,acc,0.49875,0.01,2,0.49875
OPT-1.3B (2-8-2 Distill),ft_emulator,average_8,acc,0.465875,0.01,2,0.465875
OPT-1.3B (2-8-2 Distill),plugin,average_8,acc,0.49,0.01,2,0.49
OPT-1.3B (2-8-2 Distill),privacy_gap,average_8,acc,0.024125,0,2,0.024125
OPT-1.3B (2-8-2 Distill),zs_emulator_gap,average_8,acc,0.032875,0,2,0.032875
OPT-1.3B (2-8-2 Distill),ft_emulator_gap,average_8,acc,0.032875,0,2,0.032875
OPT-1.3B (2-8-2 Distill),efficiency,,tokens_per_s,5100,200,2,
OPT-1.3B (2-8-2 Distill),efficiency,,peak_memory_mib,9000,2,2,
OPT-1.3B (2-8-2 Distill),efficiency,,trainable_params,201326592,0,2,
OPT-1.3B (2-8-2 Distill),efficiency,,total_params,1315758080,0,2,
)csv";

// Sets an environment variable for the lifetime of the object (children inherit it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The interpreter the figure tests use: Debian's, which scripts/setup.sh gives matplotlib,
// numpy and h5py (a python3 earlier on PATH may be another one).
std::string test_python() { return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

TEST(Analyze, TablesFromAResultsDirectory) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  auto r = run_cli("analyze " + root + " --no-figures");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kExpectedMarkdown);
  const std::string out = root + "/analysis";  // the default --out
  EXPECT_EQ(slurp(out + "/tables.md"), r.out) << "tables.md is what was printed";
  EXPECT_EQ(slurp(out + "/tables.csv"), kExpectedCsv);
  EXPECT_FALSE(std::filesystem::exists(out + "/figures")) << "--no-figures";

  // Not completed runs and temporaries are reported on stderr, each by name.
  EXPECT_NE(r.err.find("ignored 1 leftover temporary file (.*.tmp.*) of killed writers"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped: " + root + "/table1/opt-1.3b-2-8-2_seed3.h5 (status failed: CUDA out of memory)\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("skipped: " + root + "/table1/opt-1.3b-2-8-2_seed4.h5 (status running)\n"), std::string::npos)
      << r.err;

  const std::string tex = slurp(out + "/tables.tex");
  for (const char* part : {"\\begin{tabular}{lrrrrrrrrrr}\n\\toprule\nSetting & OBQA & PIQA",
                           "\\multicolumn{11}{l}{\\textbf{OPT-1.3B (2-8-2 Distill)}} \\\\\n"
                           "Full ZS & 23.4 $\\pm$ 1.0 & 71.6 $\\pm$ 1.0",
                           "\\midrule\nPrivacy gap (Plug-in minus OT Emulator) & +4.2 & +2.9",
                           "Plug-in above Full ZS & +2.4 $\\checkmark$ (3/3) & -0.9 $\\times$ (1/3) & -- & -1.95 $\\times$ (0/3) & 1/3",
                           "distilled\\_emulator & -- & -- & -- & 27.50 (n=1) \\\\", "brown\\_j ppl",
                           "\\bottomrule\n\\end{tabular}"}) {
    EXPECT_NE(tex.find(part), std::string::npos) << part << "\n" << tex;
  }
  const auto summary = nlohmann::json::parse(slurp(out + "/summary.json"));
  ASSERT_EQ(summary["sweeps"].size(), 1u);
  EXPECT_EQ(summary["sweeps"][0]["key"], "emulator.layers") << "the seed is never a sweep";
  EXPECT_EQ(summary["runs"].size(), 5u);
}

TEST(Analyze, SummaryCarriesThePapersVocabulary) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  auto r = run_cli("analyze " + root + " --no-figures");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = nlohmann::json::parse(slurp(root + "/analysis/summary.json"));
  const nlohmann::json& v = summary["vocabulary"];
  ASSERT_EQ(v["settings"].size(), 5u);
  std::vector<std::string> settings;
  for (const auto& s : v["settings"]) settings.push_back(s["name"].get<std::string>() + "=" + s["label"].get<std::string>());
  EXPECT_EQ(settings, (std::vector<std::string>{"zs_full=Full ZS", "zs_emulator=Emulator ZS", "ft_full=FT",
                                                "ft_emulator=OT Emulator", "plugin=OT Plug-in"}));
  EXPECT_EQ(v["tasks"][0]["name"], "openbookqa");
  EXPECT_EQ(v["checks"].size(), 3u);
  // Every metric of the tables, with its direction; the columns agree.
  EXPECT_EQ(v["metrics"]["acc"]["lower_is_better"], false);
  EXPECT_EQ(v["metrics"]["perplexity"]["lower_is_better"], true);
  EXPECT_EQ(v["metrics"]["loss"]["lower_is_better"], true);
  for (const auto& g : summary["groups"])
    for (const auto& c : g["columns"])
      EXPECT_EQ(c["lower_is_better"], v["metrics"][c["metric"].get<std::string>()]["lower_is_better"]) << c;
}

TEST(Analyze, MetricChoosesTheAccuracyShown) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  auto r = run_cli("analyze " + root + " --metric acc_norm --no-figures --out " + tmp.file("norm"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(root + "/analysis"));
  EXPECT_EQ(slurp(tmp.file("norm/tables.md")), r.out);
  // Only PIQA has acc_norm; the other columns say that they show acc.
  EXPECT_NE(r.out.find("| Setting | OBQA (acc) | PIQA | ARC-E (acc) | ARC-C (acc) | HellaSwag (acc) | SciQ (acc) | "
                       "WebQs (acc) | RACE (acc) | WikiText ppl | Avg (8) |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| OT Plug-in | 29.0 ± 1.0 | 79.5 ± 1.0 | 59.4 ± 1.0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| Setting | PIQA (acc) | ARC-E (acc) | HellaSwag (acc) | brown_j ppl |"), std::string::npos);
  const std::string csv = slurp(tmp.file("norm/tables.csv"));
  EXPECT_NE(csv.find("OPT-1.3B (2-8-2 Distill),plugin,piqa,acc_norm,0.795,0.01,2,0.745\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("OPT-1.3B (2-8-2 Distill),plugin,piqa,acc,0.745,0.01,2,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("OPT-1.3B (2-8-2 Distill),plugin,average_8,acc_norm,0.49625,0.01,2,0.49\n"), std::string::npos) << csv;

  auto bad = run_cli("analyze " + root + " --metric f1");
  EXPECT_EQ(bad.exit_code, 2) << "a usage error";
}

TEST(Analyze, AnotherSchemaVersionIsOneClearError) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  const std::string v2 = root + "/zz_other/run.h5";
  write_other_schema(v2, 2);
  auto r = run_cli("analyze " + root + " --no-figures");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "ot: error: " + v2 + ": result schema version 2 is not supported; this build of offsite reads "
                   "schema version 1\n");
  EXPECT_FALSE(std::filesystem::exists(root + "/analysis/tables.md")) << "nothing written";

  std::filesystem::remove(v2);
  ot::test::write_file(v2, "not HDF5 at all");
  r = run_cli("analyze " + root + " --no-figures");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(v2 + ": not an HDF5 file"), std::string::npos) << r.err;
}

TEST(Analyze, BadInputsAreClearErrors) {
  TempDir tmp;
  auto r = run_cli("analyze " + tmp.file("missing"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(tmp.file("missing") + ": not a directory"), std::string::npos) << r.err;

  const std::string root = tmp.file("results");
  RunSpec running{"a/run.h5", "L", "g", "", 1, nlohmann::json::object(), RunSpec::kRunning};
  write_run(root, running, {{"plugin", "piqa", "acc", 0.5}});
  r = run_cli("analyze " + root);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("skipped: " + root + "/a/run.h5 (status running)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(root + ": no completed run files (1 skipped)"), std::string::npos) << r.err;

  // sweep_params must be a JSON object.
  {
    results::RunInfo info;
    info.run_id = "bad";
    info.experiment = "e";
    results::RunRecorder rec(root + "/b/bad.h5", info);
    rec.set_attribute("sweep_params", "emulator.layers=8");
    rec.complete();
  }
  r = run_cli("analyze " + root);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(root + "/b/bad.h5: root attribute 'sweep_params' should be a JSON object"), std::string::npos)
      << r.err;
  std::filesystem::remove(root + "/b/bad.h5");

  // cka_similarity must be a square matrix over its blocks ...
  RunSpec lopsided{"d/run.h5", "L", "g3", "", 1, nlohmann::json::object()};
  write_run(root, lopsided, {{"plugin", "piqa", "acc", 0.5}}, {}, false,
            {{"blocks", {2, 3}}, {"matrix", {{1.0, 0.5}}}, {"kept", {3}}});
  r = run_cli("analyze " + root + " --no-figures");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(root + "/d/run.h5: root attribute 'cka_similarity' should be a JSON object"), std::string::npos)
      << r.err;
  std::filesystem::remove(root + "/d/run.h5");
  // ... of numbers, over integer block indices.
  write_run(root, lopsided, {{"plugin", "piqa", "acc", 0.5}}, {}, false,
            {{"blocks", {2, 3}}, {"matrix", {{1.0, "x"}, {0.5, 1.0}}}, {"kept", {3}}});
  r = run_cli("analyze " + root + " --no-figures");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(root + "/d/run.h5: root attribute 'cka_similarity' should be a JSON object"), std::string::npos)
      << r.err;
  std::filesystem::remove(root + "/d/run.h5");

  // A malformed paper_table names the run file.
  RunSpec odd{"c/run.h5", "L", "g2", "table1-opt", 1, nlohmann::json::object()};
  write_run(root, odd, {{"plugin", "piqa", "acc", 0.5}});
  r = run_cli("analyze " + root + " --no-figures");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(root + "/c/run.h5: paper_table 'table1-opt' should be TABLE:MODEL"), std::string::npos) << r.err;
}

TEST(Analyze, WritesFigures) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  ScopedEnv python("OT_PYTHON", test_python());
  auto r = run_cli("analyze " + root);
  ASSERT_EQ(r.exit_code, 0) << "the figures need " << test_python()
                            << " with matplotlib, numpy and h5py (scripts/setup.sh installs them):\n"
                            << r.err;
  const std::string figures = root + "/analysis/figures/";
  for (const char* stem : {"curve_distill", "curve_finetune", "curve_finetune_eval", "sweep_emulator.layers",
                           "privacy_utility_emulator.layers", "efficiency", "results_OPT-1.3B_2-8-2_Distill",
                           "results_OPT-1.3B_2-4-2_Distill", "privacy_utility", "cka_OPT-1.3B_2-4-2_Distill"}) {
    const std::string png = slurp(figures + stem + ".png");
    ASSERT_GT(png.size(), 1000u) << stem << ".png missing or empty";
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << stem;
    const std::string svg = slurp(figures + stem + ".svg");
    EXPECT_NE(svg.find("<svg"), std::string::npos) << stem << ".svg";
  }
  EXPECT_NE(r.err.find("plot_results.py: wrote 20 files to " + root + "/analysis/figures\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, kExpectedMarkdown) << "the plot script writes nothing to stdout";
}

TEST(Analyze, MissingPythonOrMatplotlibSaysSo) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  build_results(root);
  {
    ScopedEnv python("OT_PYTHON", tmp.file("no/python3"));
    auto r = run_cli("analyze " + root);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("figures: cannot run '" + tmp.file("no/python3") + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("or pass --no-figures"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(root + "/analysis/tables.md"), kExpectedMarkdown) << "the tables come first";
  }
  {
    // A matplotlib that cannot be imported shadows the real one.
    std::filesystem::create_directories(tmp.file("shadow/matplotlib"));
    ot::test::write_file(tmp.file("shadow/matplotlib/__init__.py"), "raise ImportError('no matplotlib here')\n");
    ScopedEnv python("OT_PYTHON", test_python());
    ScopedEnv path("PYTHONPATH", tmp.file("shadow"));
    auto r = run_cli("analyze " + root);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("plot_results.py: no matplotlib here: the figures need matplotlib, numpy and h5py"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("figures: '" + test_python() + "' lacks a module"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("or pass --no-figures"), std::string::npos) << r.err;
  }
  {
    // The analysis folder is found through $OT_ANALYSIS_DIR when set.
    std::filesystem::create_directories(tmp.file("empty"));
    ScopedEnv dir("OT_ANALYSIS_DIR", tmp.file("empty"));
    auto r = run_cli("analyze " + root + " --no-figures");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(tmp.file("empty") + "/paper_numbers.csv: not found ($OT_ANALYSIS_DIR should hold"),
              std::string::npos)
        << r.err;
  }
}

TEST(Analyze, EfficiencyGroupsAndPublishedEfficiency) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  // Two groups with one label: their names add the swept values.
  for (const char* peft : {"none", "lora"}) {
    for (std::int64_t seed : {1, 2}) {
      RunSpec spec{std::string("eff/") + peft + "_" + std::to_string(seed) + ".h5", "OPT-1.3B OT (2-8-2)",
                   std::string("ot-") + peft, "efficiency:opt-1.3b", seed, {{"peft", peft}, {"experiment.seed", seed}}};
      const double lora = std::string(peft) == "lora" ? 1.0 : 0.0;
      write_run(root, spec, {},
                {{"tokens_per_s", 40 + 10 * lora + seed}, {"peak_memory_mib", 7897 - 500 * lora},
                 {"trainable_params", lora > 0 ? 589824 : 201326592}});
    }
  }
  auto r = run_cli("analyze " + root + " --no-figures");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const char* expected = R"md(## Efficiency

| Group | Tokens/s | Peak memory (MiB) | Trainable params |
|---|---:|---:|---:|
| OPT-1.3B OT (2-8-2) [peft=lora] | 51.50 ± 0.50 | 7397 ± 0 | 589.8K |
| OPT-1.3B OT (2-8-2) [peft=none] | 41.50 ± 0.50 | 7897 ± 0 | 201.3M |

Published (PAPER.md efficiency table, opt-1.3b; units are not printed in the paper, read as tokens/s and MB):

| Method | Tokens/s | Memory (MB) | Speed-up vs FT | Memory vs FT |
|---|---:|---:|---:|---:|
| FT | 1316 | 30458 | 1.00x | 1.00x |
| FT + LoRA | 3379 | 12470 | 2.57x | 2.44x less |
| OT | 5207 | 9336 | 3.96x | 3.26x less |
| OT + LoRA | 8525 | 6192 | 6.48x | 4.92x less |
)md";
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("## OPT-1.3B"), std::string::npos) << "no evaluation table without evaluations";
  EXPECT_NE(slurp(root + "/analysis/tables.csv").find("OPT-1.3B OT (2-8-2) [peft=lora],efficiency,,tokens_per_s,51.5,0.5,2,\n"),
            std::string::npos);
}

// The offsite recipe records each stage's numbers under a prefix (pretrain_, distill_,
// full_finetune_; the adapter fine-tuning bare): one row per stage, in pipeline order. Only the
// first run pretrains (later ones find the model cached), hence "(n=1)".
TEST(Analyze, EfficiencyRowsPerStage) {
  TempDir tmp;
  const std::string root = tmp.file("results");
  for (std::int64_t seed : {1, 2}) {
    RunSpec spec{"qs/run" + std::to_string(seed) + ".h5", "Quick", "q", "", seed, {{"experiment.seed", seed}}};
    std::vector<std::pair<std::string, double>> eff = {
        {"full_finetune_tokens_per_s", 3000.0 + 10 * seed}, {"tokens_per_s", 10000.0 + 100 * seed},
        {"trainable_params", 396544}, {"distill_tokens_per_s", 5000.0 + 20 * seed}, {"distill_train_s", 15.0},
        {"distill_device_train_s", 14.0}, {"device_train_s", 9.0}, {"mfu", 0.25}};
    if (seed == 1) eff.insert(eff.begin(), {{"pretrain_tokens_per_s", 3178}, {"pretrain_train_s", 206}});
    write_run(root, spec, {}, eff);
  }
  auto r = run_cli("analyze " + root + " --no-figures");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const char* expected = R"md(## Efficiency

| Group | Stage | Tokens/s | Device time (s) | Train time (s) | Trainable params | MFU |
|---|---:|---:|---:|---:|---:|---:|
| Quick | pretraining | 3178 (n=1) | – | 206 (n=1) | – | – |
| Quick | distillation | 5030 ± 10 | 14.00 ± 0.00 | 15.00 ± 0.00 | – | – |
| Quick | fine-tuning | 10150 ± 50 | 9.00 ± 0.00 | – | 396.5K | 0.25 ± 0.00 |
| Quick | full fine-tuning | 3015 ± 5 | – | – | – | – |
)md";
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
}

TEST(Analysis, AggregateIsTheMeanAndTheStandardErrorOfTheMean) {
  Stat s = aggregate({1.0, 2.0, 4.0}, {0.5, 0.5, 0.5});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 7.0 / 3.0);
  // sample variance ((2/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3; sem = sqrt(7/3) / sqrt(3)
  EXPECT_DOUBLE_EQ(s.sem, std::sqrt(7.0 / 3.0) / std::sqrt(3.0));
  EXPECT_TRUE(s.has_sem);

  s = aggregate({0.7}, {0.02});  // one run: the harness's stderr
  EXPECT_DOUBLE_EQ(s.sem, 0.02);
  EXPECT_TRUE(s.has_sem);
  s = aggregate({0.7}, {0.0});
  EXPECT_FALSE(s.has_sem);
  s = aggregate({0.716, 0.716, 0.716}, {});
  EXPECT_EQ(s.sem, 0.0);
  EXPECT_EQ(s.mean, 0.716);
}

TEST(Analysis, PaperNumbersAreThePapersTables) {
  const PaperNumbers p = PaperNumbers::load(ot::test::repo_root() + "/analysis/paper_numbers.csv");
  EXPECT_EQ(p.numbers().size(), 2u * 5 * 9 + 2u * 4 * 9 + 16 + 2u * 3 * 6 + 15);  // + GradOT's averages
  // PAPER.md's derived values: OPT-1.3B 8-task averages 49.0 (Plug-in), 46.6 (OT Emulator), 49.9 (FT).
  auto average = [&](const std::string& setting) {
    double sum = 0;
    int n = 0;
    for (const PaperNumber& x : p.select({"table1", "opt-1.3b"})) {
      if (x.setting == setting && x.metric == "acc") {
        sum += x.value;
        ++n;
      }
    }
    EXPECT_EQ(n, 8) << setting;
    return sum / n;
  };
  EXPECT_NEAR(average("plugin"), 49.0, 0.05);
  EXPECT_NEAR(average("ft_emulator"), 46.6, 0.05);
  EXPECT_NEAR(average("ft_full"), 49.9, 0.05);
  // The headline 6.5x speed-up and 5.6x memory saving (GPT2-XL, OT + LoRA vs FT).
  std::map<std::string, double> eff;
  for (const PaperNumber& x : p.select({"efficiency", "gpt2-xl"})) eff[x.setting + "/" + x.metric] = x.value;
  EXPECT_NEAR(eff["ot_lora/tokens_per_s"] / eff["ft/tokens_per_s"], 6.54, 0.005);
  EXPECT_NEAR(eff["ft/peak_memory_mb"] / eff["ot_lora/peak_memory_mb"], 5.58, 0.005);
  for (const PaperNumber& x : p.select({"table2", "bloom-7.1b"})) EXPECT_NE(x.setting, "ft_full") << "Table 2 has no FT";
  EXPECT_TRUE(p.select({"table3", "opt-1.3b"}).empty());
  // Table 3: EVA-ViT-g's CIFAR-100 row of PAPER.md (FT, OT Emulator, OT Plug-in).
  std::map<std::string, double> cifar100;
  for (const PaperNumber& x : p.select({"table3", "eva-vit-g"}))
    if (x.task == "cifar100") cifar100[x.setting] = x.value;
  EXPECT_EQ(cifar100, (std::map<std::string, double>{{"ft_full", 93.96}, {"ft_emulator", 93.31}, {"plugin", 94.21}}));
}

TEST(Analysis, PaperNumbersErrorsNameTheLine) {
  TempDir tmp;
  const std::string path = tmp.file("numbers.csv");
  ot::test::write_file(path, "# comment\ntable,model,setting,task,metric,value\ntable1,m,plugin,piqa,acc,71.x\n");
  expect_error([&] { PaperNumbers::load(path); }, {path + ":3", "'71.x' is not a number"});
  ot::test::write_file(path, "table,model,setting,task,metric\n");
  expect_error([&] { PaperNumbers::load(path); }, {path + ":1", "expected the header"});
  ot::test::write_file(path, "table,model,setting,task,metric,value\n\"table1,m,plugin,piqa,acc,1\n");
  expect_error([&] { PaperNumbers::load(path); }, {path + ":2", "unterminated double quote"});
  ot::test::write_file(path, "table,model,setting,task,metric,value\n\"t,1\",m,plugin,,acc,1\n");
  EXPECT_EQ(PaperNumbers::load(path).numbers().at(0).table, "t,1");
  expect_error([&] { parse_paper_ref("table1", "run.h5"); }, {"run.h5", "TABLE:MODEL"});
  EXPECT_EQ(parse_paper_ref("table2:bloom-7.1b", "x").model, "bloom-7.1b");
}

}  // namespace
}  // namespace ot::analysis
