// analysis/tables.h: the paper's tables from a set of completed runs (`ot analyze`). The
// settings, tasks, metric directions and checks they are built from are the paper's
// vocabulary (eval/vocabulary.h); defined here: how metrics are shown, aggregation over seeds
// (Stat: mean and standard error of the mean), one table per group of runs (GroupTable:
// rows = settings, columns = tasks, the privacy-gap row, the 8-task average, the PAPER.md 2.5
// checks, the published numbers), the efficiency table, the sweeps that the figures plot,
// and analyze(), which builds all of them.
//
// Every number here is in the metric's own scale (accuracies as fractions); rendering
// (render.h) scales accuracies to %.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/paper.h"
#include "analysis/runs.h"
#include "eval/vocabulary.h"

namespace ot::analysis {

// Mean over runs; `sem` is the standard error of the mean (sample standard deviation /
// sqrt(n)) when n > 1, else the one run's harness stderr when it is non-zero.
struct Stat {
  double mean = 0;
  double sem = 0;
  bool has_sem = false;
  int n = 0;
};
// `stderrs` holds each value's harness stderr (used only when there is one value).
Stat aggregate(const std::vector<double>& values, const std::vector<double>& stderrs);

// One table column: a task and the metric shown for it.
struct Column {
  std::string task, metric;
  std::string header;  // e.g. "OBQA", "WebQs (acc)", "WikiText ppl", "brown_j ppl"
  bool percent = false;
  bool lower_is_better = false;
};

// How much `better` beats `worse` in a column: a - b, or b - a when lower is better.
double margin(const Column& column, double better, double worse);

// A PAPER.md 2.5 check (pattern_checks()): "<better row> beats <worse row>" with its margin
// per column.
struct Check {
  std::string name;      // e.g. "Plug-in above Full ZS"
  std::string better, worse;  // settings
  std::vector<std::optional<double>> margins;  // per column; > 0: the pattern holds
  std::optional<double> average_margin;        // on the 8-task average
  // Per column, run by run: in how many of the runs that have both cells the pattern holds,
  // and how many runs have both (a mean can hold while one seed does not).
  std::vector<std::pair<int, int>> runs_holding;
};

// The published numbers for a group, in the layout of its table (metric scale).
struct PaperCells {
  PaperRef ref;
  std::map<std::pair<std::string, std::string>, double> cells;  // (setting, task)
  std::map<std::string, double> average;                        // setting -> 8-task average
  // Differences published as such on the 8-task average (difference name -> value), e.g.
  // GradOT's "Emu FT -> Plug-in" column, where the paper gives no per-setting averages.
  std::map<std::string, double> average_differences;
};

// A privacy-utility metric: how much one setting beats another ("better minus worse" in each
// column's direction, so positive: the paper's pattern). The three (difference_kinds()):
//   privacy_gap      OT Plug-in minus OT Emulator: what the fine-tuned emulator alone lacks
//   zs_emulator_gap  Full ZS minus Emulator ZS: the emulator's zero-shot utility lost
//   ft_emulator_gap  FT minus OT Emulator: the emulator's fine-tuned utility lost
struct DifferenceKind {
  std::string name, label, better, worse;
};
const std::vector<DifferenceKind>& difference_kinds();

// One difference over a group's runs: the mean of the runs' own differences with their sem
// where every run has both cells (paired seeds), else the difference of the means with
// sqrt(sem_a^2 + sem_b^2) when both cells have a sem.
struct Difference {
  DifferenceKind kind;
  std::vector<std::optional<Stat>> per_column;
  std::optional<Stat> average;  // on the 8-task average
};

// One line of tables.csv.
struct LongRow {
  std::string setting, task, metric;
  Stat stat;
  std::optional<double> paper;
};

// The published value of a difference on the 8-task average: as published, else from the
// two published averages; nullopt if neither.
std::optional<double> paper_average_difference(const PaperCells& p, const DifferenceKind& kind);

struct GroupTable {
  std::string name;  // the label, made unique if two groups share one
  std::string group_id, label, recipe, paper_table;
  std::vector<std::string> run_paths;  // relative paths of its runs
  std::vector<std::int64_t> seeds;     // sorted; runs without a seed are not listed
  int n_runs = 0;
  nlohmann::json sweep = nlohmann::json::object();  // swept keys other than the seed

  std::vector<std::string> settings;  // rows with data, paper order then first seen
  std::vector<Column> columns;        // columns with data, paper order then first seen
  std::map<std::pair<std::string, std::string>, Stat> cells;  // (setting, task) of the shown metric

  bool has_average = false;              // all 8 tasks are columns
  std::map<std::string, Stat> average;   // setting -> 8-task average (settings with all 8)

  std::vector<std::optional<double>> gap;  // plug-in beats OT emulator by, per column
  std::optional<double> average_gap;
  std::vector<Difference> differences;     // the kinds with at least one value, in kind order
  std::vector<Check> checks;               // those with at least one margin

  std::optional<PaperCells> paper;
  std::vector<LongRow> long_rows;  // every setting, task and metric, then gap and averages

  bool has_eval() const { return !columns.empty(); }
  const Stat* cell(const std::string& setting, const std::string& task) const;
  const Difference* difference(const std::string& name) const;  // nullptr if it has no value
};

// One group's efficiency numbers (the /efficiency table), over its runs.
struct EfficiencyRow {
  std::string group;                    // GroupTable::name
  std::vector<std::string> names;       // in first-seen order
  std::map<std::string, Stat> values;   // name -> stat
  std::map<std::string, std::string> units;
};

// One value of a swept key: the group of runs that has it.
struct SweepPoint {
  nlohmann::json value;   // the swept value, e.g. 8
  nlohmann::json others;  // the other non-seed swept keys of the group
  std::size_t group = 0;  // index into Analysis::groups
};

// A key swept over at least two values (the seed is never one).
struct Sweep {
  std::string key;
  std::vector<SweepPoint> points;  // in group order
};

struct Analysis {
  std::string metric;  // the preferred accuracy metric: acc or acc_norm
  int n_runs = 0;
  std::vector<GroupTable> groups;  // first-seen order
  std::vector<EfficiencyRow> efficiency;
  std::vector<std::pair<PaperRef, std::vector<PaperNumber>>> paper_efficiency;  // models referenced
  std::vector<std::string> notes;  // e.g. paper_table values with no published numbers
  std::vector<Sweep> sweeps;
};

// Builds every table from the completed runs. `paper` is needed only when some run has a
// paper_table attribute (pass nullptr otherwise; then such a run throws ot::Error).
// `metric` is "acc" or "acc_norm": the accuracy shown where a task has both.
Analysis analyze(const std::vector<RunData>& runs, const std::string& metric, const PaperNumbers* paper);

// Whether any run has a paper_table attribute (so analyze() needs the published numbers).
bool needs_paper_numbers(const std::vector<RunData>& runs);

}  // namespace ot::analysis
