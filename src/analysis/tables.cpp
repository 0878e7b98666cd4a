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
    const Column* col = find_column(t, n.task);
    if (col == nullptr) continue;
    const bool same_kind = (is_accuracy_metric(n.metric) && col->percent) ||
                           (lower_is_better(n.metric) && col->lower_is_better);
    if (!same_kind) continue;
    p.cells[{n.setting, n.task}] = is_accuracy_metric(n.metric) ? n.value / 100.0 : n.value;
  }
  if (t.has_average) {
    for (const std::string& s : paper_settings()) {
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
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (!t.gap[i]) continue;
    const Column& c = t.columns[i];
    Stat s;
    s.mean = *t.gap[i];
    s.n = std::min(t.cell("plugin", c.task)->n, t.cell("ft_emulator", c.task)->n);
    LongRow row{"privacy_gap", c.task, c.metric, s, std::nullopt};
    if (t.paper) {
      auto p = t.paper->cells.find({"plugin", c.task});
      auto e = t.paper->cells.find({"ft_emulator", c.task});
      if (p != t.paper->cells.end() && e != t.paper->cells.end()) row.paper = margin(c, p->second, e->second);
    }
    t.long_rows.push_back(row);
  }
  for (const std::string& s : t.settings) {
    auto it = t.average.find(s);
    if (it == t.average.end()) continue;
    LongRow row{s, "average_8", preferred, it->second, std::nullopt};
    if (t.paper && t.paper->average.count(s)) row.paper = t.paper->average.at(s);
    t.long_rows.push_back(row);
  }
  if (t.average_gap) {
    Stat s;
    s.mean = *t.average_gap;
    s.n = std::min(t.average.at("plugin").n, t.average.at("ft_emulator").n);
    LongRow row{"privacy_gap", "average_8", preferred, s, std::nullopt};
    if (t.paper && t.paper->average.count("plugin") && t.paper->average.count("ft_emulator")) {
      row.paper = t.paper->average.at("plugin") - t.paper->average.at("ft_emulator");
    }
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
  const bool all_equal = std::all_of(values.begin(), values.end(), [&](double v) { return v == values.front(); });
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
