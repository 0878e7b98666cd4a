// analysis/figures.cpp: the plot script's input and how it is run (see figures.h).
#include "analysis/figures.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "analysis/assets.h"
#include "util/error.h"

extern char** environ;

namespace ot::analysis {

namespace {

nlohmann::json stat_json(const Stat& s, double scale) {
  nlohmann::json j = {{"mean", s.mean * scale}, {"n", s.n}};
  j["sem"] = s.has_sem ? nlohmann::json(s.sem * scale) : nlohmann::json();
  return j;
}

// Exit status of the plot script when a Python module it needs is missing.
constexpr int kMissingModule = 3;

}  // namespace

nlohmann::json figure_summary(const Analysis& a, const RunCollection& runs) {
  nlohmann::json out = {{"metric", a.metric}};
  nlohmann::json groups = nlohmann::json::array();
  std::map<std::string, std::string> group_of_run;
  for (const GroupTable& t : a.groups) {
    nlohmann::json g = {{"name", t.name}, {"label", t.label}, {"sweep", t.sweep}, {"runs", t.n_runs}};
    nlohmann::json columns = nlohmann::json::array();
    nlohmann::json cells = nlohmann::json::array();
    for (const Column& c : t.columns) {
      const double scale = c.percent ? 100.0 : 1.0;
      columns.push_back({{"task", c.task},
                         {"metric", c.metric},
                         {"header", c.header},
                         {"unit", c.percent ? "%" : ""},
                         {"lower_is_better", c.lower_is_better}});
      for (const std::string& s : t.settings) {
        if (const Stat* cell = t.cell(s, c.task)) {
          nlohmann::json j = stat_json(*cell, scale);
          j["setting"] = s;
          j["setting_label"] = setting_label(s);
          j["task"] = c.task;
          cells.push_back(j);
        }
      }
    }
    g["columns"] = columns;
    g["cells"] = cells;

    // The 8-task average (in %), the privacy-utility differences, the checks and the
    // published numbers, all in the shown scale.
    g["has_average"] = t.has_average;
    nlohmann::json average = nlohmann::json::object();
    for (const auto& [setting, stat] : t.average) average[setting] = stat_json(stat, 100.0);
    g["average"] = average;
    nlohmann::json differences = nlohmann::json::array();
    for (const Difference& d : t.differences) {
      nlohmann::json per_task = nlohmann::json::object();
      for (std::size_t i = 0; i < t.columns.size(); ++i) {
        if (d.per_column[i]) per_task[t.columns[i].task] = stat_json(*d.per_column[i], t.columns[i].percent ? 100.0 : 1.0);
      }
      differences.push_back({{"name", d.kind.name},
                             {"label", d.kind.label},
                             {"better", d.kind.better},
                             {"worse", d.kind.worse},
                             {"cells", per_task},
                             {"average", d.average ? stat_json(*d.average, 100.0) : nlohmann::json()}});
    }
    g["differences"] = differences;
    nlohmann::json checks = nlohmann::json::array();
    for (const Check& c : t.checks) {
      nlohmann::json margins = nlohmann::json::object();
      for (std::size_t i = 0; i < t.columns.size(); ++i) {
        if (!c.margins[i]) continue;
        margins[t.columns[i].task] = {{"margin", *c.margins[i] * (t.columns[i].percent ? 100.0 : 1.0)},
                                      {"runs_holding", c.runs_holding[i].first},
                                      {"runs", c.runs_holding[i].second}};
      }
      checks.push_back({{"name", c.name},
                        {"better", c.better},
                        {"worse", c.worse},
                        {"margins", margins},
                        {"average_margin", c.average_margin ? nlohmann::json(*c.average_margin * 100.0) : nlohmann::json()}});
    }
    g["checks"] = checks;
    if (t.paper) {
      nlohmann::json pcells = nlohmann::json::array();
      for (const auto& [key, value] : t.paper->cells) {
        const Column* col = nullptr;
        for (const Column& c : t.columns) {
          if (c.task == key.second) col = &c;
        }
        pcells.push_back({{"setting", key.first}, {"task", key.second}, {"value", value * (col && col->percent ? 100.0 : 1.0)}});
      }
      nlohmann::json pavg = nlohmann::json::object();
      for (const auto& [setting, value] : t.paper->average) pavg[setting] = value * 100.0;
      nlohmann::json pdiff = nlohmann::json::object();
      for (const DifferenceKind& kind : difference_kinds()) {
        if (auto v = paper_average_difference(*t.paper, kind)) pdiff[kind.name] = *v * 100.0;
      }
      g["paper"] = {{"ref", t.paper->ref.text()}, {"cells", pcells}, {"average", pavg}, {"average_differences", pdiff}};
    } else {
      g["paper"] = nullptr;
    }
    groups.push_back(g);
    for (const std::string& rel : t.run_paths) group_of_run[rel] = t.name;
  }
  out["groups"] = groups;

  nlohmann::json run_list = nlohmann::json::array();
  for (const RunData& r : runs.runs) {
    nlohmann::json j = {{"path", std::filesystem::absolute(r.path).string()},
                        {"file", r.rel_path},
                        {"run_id", r.run_id},
                        {"group", group_of_run.at(r.rel_path)},
                        {"curves", r.curves}};
    j["seed"] = r.seed ? nlohmann::json(*r.seed) : nlohmann::json();
    j["cka"] = r.cka;
    run_list.push_back(j);
  }
  out["runs"] = run_list;

  nlohmann::json sweeps = nlohmann::json::array();
  for (const Sweep& s : a.sweeps) {
    nlohmann::json points = nlohmann::json::array();
    for (const SweepPoint& p : s.points) points.push_back({{"value", p.value}, {"others", p.others}, {"group", p.group}});
    sweeps.push_back({{"key", s.key}, {"points", points}});
  }
  out["sweeps"] = sweeps;

  nlohmann::json eff = nlohmann::json::array();
  for (const EfficiencyRow& r : a.efficiency) {
    nlohmann::json values = nlohmann::json::object();
    for (const std::string& n : r.names) {
      values[n] = stat_json(r.values.at(n), 1.0);
      values[n]["unit"] = r.units.at(n);
    }
    eff.push_back({{"group", r.group}, {"values", values}});
  }
  out["efficiency"] = eff;

  // The paper's settings, tasks and checks, and the direction of every metric shown, so that
  // the plot script need not repeat them.
  std::vector<std::string> metrics;
  for (const GroupTable& t : a.groups) {
    for (const LongRow& r : t.long_rows) {
      if (std::find(metrics.begin(), metrics.end(), r.metric) == metrics.end()) metrics.push_back(r.metric);
    }
  }
  out["vocabulary"] = vocabulary_json(metrics);
  return out;
}

std::string python_interpreter() {
  const char* env = std::getenv("OT_PYTHON");
  return env != nullptr && *env != '\0' ? env : "python3";
}

void plot_figures(const std::string& summary_path, const std::string& figures_dir) {
  const std::string script = analysis_file("plot_results.py");
  const std::string python = python_interpreter();
  std::vector<std::string> args = {python, script, "--summary", summary_path, "--out", figures_dir};
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  // The script's progress goes to stderr, so that stdout carries only tables.md.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  OT_REQUIRE(rc == 0, "figures: cannot run '", python, "' (", std::strerror(rc),
             "); the figures need Python 3 with matplotlib, numpy and h5py: install them (Debian: apt-get install "
             "python3-matplotlib python3-h5py), set $OT_PYTHON to such an interpreter, or pass --no-figures");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    OT_REQUIRE(errno == EINTR, "figures: waiting for ", python, " failed: ", std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == kMissingModule) {
    fail("figures: '", python, "' lacks a module that ", script,
         " needs (see its message above): install matplotlib, numpy and h5py (Debian: apt-get install "
         "python3-matplotlib python3-h5py), set $OT_PYTHON to an interpreter that has them, or pass --no-figures");
  }
  const std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status));
  fail("figures: ", script, " failed (", how, "; its message is above); the tables were written; pass --no-figures ",
       "to skip the figures");
}

}  // namespace ot::analysis
