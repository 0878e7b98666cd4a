// analysis/tables.cpp: grouping runs and aggregating them into the paper's tables (see tables.h).
#include "analysis/tables.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "util/error.h"

namespace ot::analysis {

namespace {

void push_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// `seen` reordered: the names of `canonical` first, in its order, then the others as seen.
std::vector<std::string> canonical_order(const std::vector<std::string>& seen,
                                         const std::vector<std::string>& canonical) {
  std::vector<std::string> out;
  for (const std::string& c : canonical) {
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) out.push_back(c);
  }
  for (const std::string& s : seen) push_unique(out, s);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The metric a task's column shows, from the metrics recorded for it (first-seen order):
// the preferred accuracy, else the other accuracy, else a perplexity (block perplexity
// first, as the paper's WikiText column), else any lower-is-better metric, else the first.
std::string choose_metric(const std::vector<std::string>& metrics, const std::string& preferred) {
  if (contains(metrics, preferred)) return preferred;
  for (const std::string& m : metrics) {
    if (is_accuracy_metric(m)) return m;
  }
  for (const char* m : {"perplexity", "ppl", "word_perplexity"}) {
    if (contains(metrics, m)) return m;
  }
  for (const std::string& m : metrics) {
    if (lower_is_better(m)) return m;
  }
  return metrics.front();
}

Column make_column(const std::string& task, const std::string& metric, const std::string& preferred) {
  Column c;
  c.task = task;
  c.metric = metric;
  c.percent = is_accuracy_metric(metric);
  c.lower_is_better = lower_is_better(metric);
  c.header = task_label(task);
  if (c.percent) {
    if (metric != preferred) c.header += " (" + metric + ")";
  } else if (metric == "perplexity" || metric == "ppl") {
    c.header += " ppl";
  } else {
    c.header += " (" + metric + ")";
  }
  return c;
}

// A non-seed swept value as text, for telling groups with the same label apart.
std::string sweep_text(const nlohmann::json& sweep) {
  std::string out;
  for (const auto& [k, v] : sweep.items()) {
    out += (out.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

nlohmann::json without_seed(const nlohmann::json& sweep) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : sweep.items()) {
    if (!is_seed_key(k)) out[k] = v;
  }
  return out;
}

using Key = std::tuple<std::string, std::string, std::string>;  // setting, task, metric

struct Samples {
  std::vector<double> values, stderrs;
};

// One group's evaluation rows, over its runs: every (setting, task, metric) with one value
// per run (a run's later row for the same key replaces its earlier one).
struct GroupSamples {
  std::vector<std::string> settings, tasks;
  std::map<std::string, std::vector<std::string>> metrics;  // task -> first-seen metrics
  std::map<Key, Samples> samples;
  std::vector<std::map<Key, double>> per_run;  // each run's final values
};

GroupSamples gather(const std::vector<const RunData*>& runs) {
  GroupSamples g;
  for (const RunData* run : runs) {
    std::map<Key, std::pair<double, double>> last;
    for (const results::EvalRow& row : run->eval) {
      push_unique(g.settings, row.setting);
      push_unique(g.tasks, row.task);
      push_unique(g.metrics[row.task], row.metric);
      last[{row.setting, row.task, row.metric}] = {row.value, row.stderr_value};
    }
    std::map<Key, double> values;
    for (const auto& [key, vs] : last) {
      g.samples[key].values.push_back(vs.first);
      g.samples[key].stderrs.push_back(vs.second);
      values[key] = vs.first;
    }
    g.per_run.push_back(std::move(values));
  }
  return g;
}

constexpr const char* kAverageTask = "average_8";

bool is_difference_name(const std::string& name) {
  const auto& kinds = difference_kinds();
  return std::any_of(kinds.begin(), kinds.end(), [&](const DifferenceKind& k) { return k.name == name; });
}

// `better` minus `worse` from two stats and, where they exist, the runs' paired values.
std::optional<Stat> difference_stat(const Stat* better, const Stat* worse, const std::vector<double>& paired,
                                    double sign_of_margin) {
  if (better == nullptr || worse == nullptr) return std::nullopt;
  const int n = std::min(better->n, worse->n);
  if (static_cast<int>(paired.size()) == n && better->n == worse->n && n > 1) return aggregate(paired, {});
  Stat s;
  s.mean = sign_of_margin * (better->mean - worse->mean);
  s.n = n;
  if (better->has_sem && worse->has_sem) {
    s.sem = std::sqrt(better->sem * better->sem + worse->sem * worse->sem);
    s.has_sem = true;
  }
  return s;
}

// The 8-task average of one setting, when all 8 cells exist.
std::optional<Stat> average_of(const GroupTable& t, const std::string& setting, const GroupSamples& g) {
  std::vector<const Stat*> cells;
  std::vector<Key> keys;
  for (const std::string& task : average_tasks()) {
    const Stat* c = t.cell(setting, task);
    if (c == nullptr) return std::nullopt;
    cells.push_back(c);
    for (const Column& col : t.columns) {
      if (col.task == task) keys.emplace_back(setting, task, col.metric);
    }
  }
  Stat avg;
  avg.n = cells.front()->n;
  bool same_n = true;
  for (const Stat* c : cells) {
    avg.mean += c->mean / static_cast<double>(cells.size());
    avg.n = std::min(avg.n, c->n);
    same_n = same_n && c->n == cells.front()->n;
  }
  // Each run's own average, when the runs that have all eight are exactly the cells' runs.
  std::vector<double> per_run;
  for (const auto& values : g.per_run) {
    double sum = 0;
    bool all = true;
    for (const Key& k : keys) {
      auto it = values.find(k);
      if (it == values.end()) {
        all = false;
        break;
      }
      sum += it->second;
    }
    if (all) per_run.push_back(sum / static_cast<double>(keys.size()));
  }
  if (same_n && avg.n > 1 && static_cast<int>(per_run.size()) == avg.n) {
    Stat s = aggregate(per_run, {});
    avg.sem = s.sem;
    avg.has_sem = true;
  } else if (same_n && avg.n == 1) {
    double var = 0;
    for (const Stat* c : cells) var += c->has_sem ? c->sem * c->sem : 0.0;
    if (var > 0) {
      avg.sem = std::sqrt(var) / static_cast<double>(cells.size());
      avg.has_sem = true;
    }
  }
  return avg;
}

const Column* find_column(const GroupTable& t, const std::string& task) {
  for (const Column& c : t.columns) {
    if (c.task == task) return &c;
  }
  return nullptr;
}

std::optional<PaperCells> paper_cells(const GroupTable& t, const PaperRef& ref,
                                      const std::vector<PaperNumber>& numbers) {
  PaperCells p;
  p.ref = ref;
  for (const PaperNumber& n : numbers) {
    // Rows on the 8-task average (a paper that prints only averages, e.g. GradOT's table),
    // shown only beside a table that has the average.
    if (n.task == kAverageTask) {
      if (!t.has_average || !is_accuracy_metric(n.metric)) continue;
      if (is_difference_name(n.setting)) {
        p.average_differences[n.setting] = n.value / 100.0;
      } else {
        p.average[n.setting] = n.value / 100.0;
      }
      continue;
    }
    const Column* col = find_column(t, n.task);
    if (col == nullptr) continue;
    const bool same_kind = (is_accuracy_metric(n.metric) && col->percent) ||
                           (lower_is_better(n.metric) && col->lower_is_better);
    if (!same_kind) continue;
    p.cells[{n.setting, n.task}] = is_accuracy_metric(n.metric) ? n.value / 100.0 : n.value;
  }
  if (t.has_average) {
    for (const std::string& s : paper_settings()) {
      if (p.average.count(s)) continue;  // published as such
      double sum = 0;
      bool all = true;
      for (const std::string& task : average_tasks()) {
        auto it = p.cells.find({s, task});
        if (it == p.cells.end()) {
          all = false;
          break;
        }
        sum += it->second;
      }
      if (all) p.average[s] = sum / static_cast<double>(average_tasks().size());
    }
  }
  return p;
}

GroupTable build_group(const std::vector<const RunData*>& runs, const std::string& preferred,
                       const PaperNumbers* paper, std::vector<std::string>& notes) {
  GroupTable t;
  const RunData& first = *runs.front();
  t.group_id = first.group_id;
  t.label = first.label;
  t.recipe = first.recipe;
  t.sweep = without_seed(first.sweep_params);
  t.n_runs = static_cast<int>(runs.size());
  for (const RunData* r : runs) {
    t.run_paths.push_back(r->rel_path);
    if (r->seed) t.seeds.push_back(*r->seed);
    if (t.paper_table.empty() && !r->paper_table.empty()) t.paper_table = r->paper_table;
  }
  std::sort(t.seeds.begin(), t.seeds.end());

  const GroupSamples g = gather(runs);
  std::map<std::string, std::string> chosen;  // task -> the metric its column shows
  for (const auto& [task, metrics] : g.metrics) chosen[task] = choose_metric(metrics, preferred);
  std::map<Key, Stat> stats;
  for (const auto& [key, s] : g.samples) stats[key] = aggregate(s.values, s.stderrs);

  const std::vector<std::string> settings = canonical_order(g.settings, paper_settings());
  const std::vector<std::string> tasks = canonical_order(g.tasks, paper_tasks());
  for (const std::string& task : tasks) {
    const std::string& metric = chosen.at(task);
    bool any = false;
    for (const std::string& s : settings) {
      auto it = stats.find({s, task, metric});
      if (it == stats.end()) continue;
      t.cells[{s, task}] = it->second;
      any = true;
    }
    if (any) t.columns.push_back(make_column(task, metric, preferred));
  }
  for (const std::string& s : settings) {
    for (const Column& c : t.columns) {
      if (t.cells.count({s, c.task})) {
        t.settings.push_back(s);
        break;
      }
    }
  }

  t.has_average = true;
  for (const std::string& task : average_tasks()) {
    const Column* c = find_column(t, task);
    t.has_average = t.has_average && c != nullptr && !c->lower_is_better;
  }
  if (t.has_average) {
    for (const std::string& s : t.settings) {
      if (auto avg = average_of(t, s, g)) t.average[s] = *avg;
    }
  }

  // The privacy gap and the PAPER.md 2.5 checks.
  for (const Column& c : t.columns) {
    const Stat* plugin = t.cell("plugin", c.task);
    const Stat* emulator = t.cell("ft_emulator", c.task);
    t.gap.push_back(plugin && emulator ? std::optional<double>(margin(c, plugin->mean, emulator->mean)) : std::nullopt);
  }
  if (t.average.count("plugin") && t.average.count("ft_emulator")) {
    t.average_gap = t.average.at("plugin").mean - t.average.at("ft_emulator").mean;
  }
  for (const DifferenceKind& kind : difference_kinds()) {
    Difference d{kind, {}, std::nullopt};
    bool any = false;
    for (const Column& c : t.columns) {
      std::vector<double> paired;
      for (const std::map<Key, double>& run : g.per_run) {
        auto rb = run.find({kind.better, c.task, c.metric});
        auto rw = run.find({kind.worse, c.task, c.metric});
        if (rb != run.end() && rw != run.end()) paired.push_back(margin(c, rb->second, rw->second));
      }
      d.per_column.push_back(
          difference_stat(t.cell(kind.better, c.task), t.cell(kind.worse, c.task), paired, c.lower_is_better ? -1 : 1));
      any = any || d.per_column.back().has_value();
    }
    if (t.average.count(kind.better) && t.average.count(kind.worse)) {
      // Each run's difference of its own two 8-task averages, where it has all 16 cells.
      std::vector<double> paired;
      for (const std::map<Key, double>& run : g.per_run) {
        double sum = 0;
        bool all = true;
        for (const std::string& task : average_tasks()) {
          const Column* c = find_column(t, task);
          auto rb = run.find({kind.better, task, c->metric});
          auto rw = run.find({kind.worse, task, c->metric});
          if (rb == run.end() || rw == run.end()) {
            all = false;
            break;
          }
          sum += rb->second - rw->second;
        }
        if (all) paired.push_back(sum / static_cast<double>(average_tasks().size()));
      }
      d.average = difference_stat(&t.average.at(kind.better), &t.average.at(kind.worse), paired, 1);
    }
    if (any) t.differences.push_back(std::move(d));
  }
  for (const PatternCheck& pattern : pattern_checks()) {
    const std::string &better = pattern.better, &worse = pattern.worse;
    Check check{pattern.name, better, worse, {}, std::nullopt, {}};
    bool any = false;
    for (const Column& c : t.columns) {
      const Stat* b = t.cell(better, c.task);
      const Stat* w = t.cell(worse, c.task);
      check.margins.push_back(b && w ? std::optional<double>(margin(c, b->mean, w->mean)) : std::nullopt);
      any = any || (b && w);
      std::pair<int, int> counts{0, 0};
      for (const std::map<Key, double>& run : g.per_run) {
        auto rb = run.find({better, c.task, c.metric});
        auto rw = run.find({worse, c.task, c.metric});
        if (rb == run.end() || rw == run.end()) continue;
        ++counts.second;
        if (margin(c, rb->second, rw->second) > 0) ++counts.first;
      }
      check.runs_holding.push_back(counts);
    }
    if (t.average.count(better) && t.average.count(worse)) {
      check.average_margin = t.average.at(better).mean - t.average.at(worse).mean;
    }
    if (any) t.checks.push_back(std::move(check));
  }

  // Published numbers.
  if (!t.paper_table.empty() && t.has_eval()) {
    OT_REQUIRE(paper != nullptr, first.path, ": paper_table is set but no published numbers were loaded");
    const PaperRef ref = parse_paper_ref(t.paper_table, first.path);
    if (ref.table != "efficiency") {
      const std::vector<PaperNumber> numbers = paper->select(ref);
      if (numbers.empty()) {
        push_unique(notes, "no published numbers for paper_table '" + ref.text() + "' in " + paper->path());
      } else {
        t.paper = paper_cells(t, ref, numbers);
        if (t.paper->cells.empty() && t.paper->average.empty() && t.paper->average_differences.empty()) {
          // E.g. averages-only numbers (GradOT's) beside a group without all eight tasks.
          push_unique(notes, "the published numbers of paper_table '" + ref.text() + "' in " + paper->path() +
                                 " match no column of group '" + t.label + "' (rows on the 8-task average need all "
                                 "eight tasks)");
          t.paper.reset();
        }
      }
    }
  }

  // The long format: every recorded metric, then the derived rows.
  for (const std::string& s : settings) {
    for (const std::string& task : tasks) {
      std::vector<std::string> metrics = {chosen.at(task)};
      for (const std::string& m : g.metrics.at(task)) push_unique(metrics, m);
      for (const std::string& m : metrics) {
        auto it = stats.find({s, task, m});
        if (it == stats.end()) continue;
        LongRow row{s, task, m, it->second, std::nullopt};
        if (t.paper && m == chosen.at(task)) {
          auto p = t.paper->cells.find({s, task});
          if (p != t.paper->cells.end()) row.paper = p->second;
        }
        t.long_rows.push_back(row);
      }
    }
  }
  for (const Difference& d : t.differences) {
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      if (!d.per_column[i]) continue;
      const Column& c = t.columns[i];
      LongRow row{d.kind.name, c.task, c.metric, *d.per_column[i], std::nullopt};
      if (t.paper) {
        auto b = t.paper->cells.find({d.kind.better, c.task});
        auto w = t.paper->cells.find({d.kind.worse, c.task});
        if (b != t.paper->cells.end() && w != t.paper->cells.end()) row.paper = margin(c, b->second, w->second);
      }
      t.long_rows.push_back(row);
    }
  }
  for (const std::string& s : t.settings) {
    auto it = t.average.find(s);
    if (it == t.average.end()) continue;
    LongRow row{s, kAverageTask, preferred, it->second, std::nullopt};
    if (t.paper && t.paper->average.count(s)) row.paper = t.paper->average.at(s);
    t.long_rows.push_back(row);
  }
  for (const Difference& d : t.differences) {
    if (!d.average) continue;
    LongRow row{d.kind.name, kAverageTask, preferred, *d.average, std::nullopt};
    if (t.paper) row.paper = paper_average_difference(*t.paper, d.kind);
    t.long_rows.push_back(row);
  }
  return t;
}

std::optional<EfficiencyRow> efficiency_of(const GroupTable& t, const std::vector<const RunData*>& runs) {
  EfficiencyRow row;
  row.group = t.name;
  std::map<std::string, std::vector<double>> values;
  for (const RunData* r : runs) {
    std::map<std::string, double> last;
    for (const results::EfficiencyEntry& e : r->efficiency) {
      push_unique(row.names, e.name);
      row.units[e.name] = e.unit;
      last[e.name] = e.value;
    }
    for (const auto& [name, v] : last) values[name].push_back(v);
  }
  if (row.names.empty()) return std::nullopt;
  for (const auto& [name, vs] : values) row.values[name] = aggregate(vs, {});
  return row;
}

}  // namespace

Stat aggregate(const std::vector<double>& values, const std::vector<double>& stderrs) {
  Stat s;
  s.n = static_cast<int>(values.size());
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  // Equal up to rounding (a difference of two cells that moved together over seeds).
  const double tolerance = 1e-12 * std::max(1.0, std::fabs(values.front()));
  const bool all_equal = std::all_of(values.begin(), values.end(),
                                     [&](double v) { return std::fabs(v - values.front()) <= tolerance; });
  if (values.size() > 1 && all_equal) {
    s.mean = values.front();  // exactly, and no rounding noise in the sem
    s.has_sem = true;
  } else if (values.size() > 1) {
    double ss = 0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.sem = std::sqrt(ss / static_cast<double>(values.size() - 1)) / std::sqrt(static_cast<double>(values.size()));
    s.has_sem = true;
  } else if (!stderrs.empty() && stderrs.front() > 0) {
    s.sem = stderrs.front();
    s.has_sem = true;
  }
  return s;
}

const std::vector<DifferenceKind>& difference_kinds() {
  static const std::vector<DifferenceKind> kinds = {
      {"privacy_gap", "Privacy gap (Plug-in minus OT Emulator)", "plugin", "ft_emulator"},
      {"zs_emulator_gap", "Emulator ZS utility lost (Full ZS minus Emulator ZS)", "zs_full", "zs_emulator"},
      {"ft_emulator_gap", "OT Emulator utility lost (FT minus OT Emulator)", "ft_full", "ft_emulator"},
  };
  return kinds;
}

std::optional<double> paper_average_difference(const PaperCells& p, const DifferenceKind& kind) {
  auto it = p.average_differences.find(kind.name);
  if (it != p.average_differences.end()) return it->second;
  if (p.average.count(kind.better) && p.average.count(kind.worse)) return p.average.at(kind.better) - p.average.at(kind.worse);
  return std::nullopt;
}

const Difference* GroupTable::difference(const std::string& name) const {
  for (const Difference& d : differences) {
    if (d.kind.name == name) return &d;
  }
  return nullptr;
}

double margin(const Column& column, double better, double worse) {
  return metric_margin(column.metric, better, worse);
}

const Stat* GroupTable::cell(const std::string& setting, const std::string& task) const {
  auto it = cells.find({setting, task});
  return it == cells.end() ? nullptr : &it->second;
}

bool needs_paper_numbers(const std::vector<RunData>& runs) {
  return std::any_of(runs.begin(), runs.end(), [](const RunData& r) { return !r.paper_table.empty(); });
}

Analysis analyze(const std::vector<RunData>& runs, const std::string& metric, const PaperNumbers* paper) {
  OT_REQUIRE(is_accuracy_metric(metric), "--metric '", metric, "': expected acc or acc_norm");
  Analysis a;
  a.metric = metric;
  a.n_runs = static_cast<int>(runs.size());

  // Groups by group_id, in first-seen order.
  std::vector<std::vector<const RunData*>> groups;
  std::map<std::string, std::size_t> index;
  for (const RunData& r : runs) {
    auto [it, inserted] = index.emplace(r.group_id, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(&r);
  }
  for (const auto& g : groups) a.groups.push_back(build_group(g, metric, paper, a.notes));

  // Names: the label, unless another group has it too; then the label and its swept values,
  // and if that is still ambiguous the label and the group id.
  auto count_names = [&](auto name_of) {
    std::map<std::string, int> n;
    for (const GroupTable& t : a.groups) ++n[name_of(t)];
    return n;
  };
  const auto by_label = count_names([](const GroupTable& t) { return t.label; });
  auto with_sweep = [](const GroupTable& t) {
    const std::string s = sweep_text(t.sweep);
    return s.empty() ? t.label : t.label + " [" + s + "]";
  };
  const auto by_sweep = count_names(with_sweep);
  for (GroupTable& t : a.groups) {
    if (by_label.at(t.label) == 1) {
      t.name = t.label;
    } else if (by_sweep.at(with_sweep(t)) == 1) {
      t.name = with_sweep(t);
    } else {
      t.name = t.label + " [" + t.group_id + "]";
    }
  }

  // Efficiency, and the published efficiency tables that groups point at.
  for (std::size_t i = 0; i < a.groups.size(); ++i) {
    if (auto row = efficiency_of(a.groups[i], groups[i])) a.efficiency.push_back(*row);
    const GroupTable& t = a.groups[i];
    if (t.paper_table.empty()) continue;
    const PaperRef ref = parse_paper_ref(t.paper_table, groups[i].front()->path);
    if (ref.table != "efficiency") continue;
    OT_REQUIRE(paper != nullptr, groups[i].front()->path, ": paper_table is set but no published numbers were loaded");
    const bool listed = std::any_of(a.paper_efficiency.begin(), a.paper_efficiency.end(),
                                    [&](const auto& p) { return p.first.text() == ref.text(); });
    if (listed) continue;
    std::vector<PaperNumber> numbers = paper->select(ref);
    if (numbers.empty()) {
      push_unique(a.notes, "no published numbers for paper_table '" + ref.text() + "' in " + paper->path());
    } else {
      a.paper_efficiency.emplace_back(ref, std::move(numbers));
    }
  }

  // Sweeps: every non-seed key that takes at least two values over the groups with tables.
  std::vector<std::string> keys;
  for (const GroupTable& t : a.groups) {
    if (!t.has_eval()) continue;
    for (const auto& kv : t.sweep.items()) push_unique(keys, kv.key());
  }
  for (const std::string& key : keys) {
    Sweep sweep;
    sweep.key = key;
    std::set<std::string> distinct;
    for (std::size_t i = 0; i < a.groups.size(); ++i) {
      const GroupTable& t = a.groups[i];
      if (!t.has_eval() || !t.sweep.contains(key)) continue;
      nlohmann::json others = t.sweep;
      others.erase(key);
      sweep.points.push_back({t.sweep.at(key), others, i});
      distinct.insert(t.sweep.at(key).dump());
    }
    if (distinct.size() >= 2) a.sweeps.push_back(std::move(sweep));
  }
  return a;
}

}  // namespace ot::analysis
