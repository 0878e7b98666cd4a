// analysis/render.cpp: Markdown, LaTeX and CSV output of an Analysis (see render.h).
#include "analysis/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ot::analysis {

namespace {

// What differs between the Markdown and the LaTeX cells.
struct Style {
  bool tex = false;
  std::string pm() const { return tex ? " $\\pm$ " : " ± "; }
  std::string none() const { return tex ? "--" : "–"; }
  std::string yes() const { return tex ? "$\\checkmark$" : "✓"; }
  std::string no() const { return tex ? "$\\times$" : "✗"; }
  std::string text(const std::string& s) const {
    std::string out;
    for (char c : s) {
      if (!tex) {
        if (c == '|') out += '\\';
        out += c;
        continue;
      }
      switch (c) {
        case '\\': out += "\\textbackslash{}"; break;
        case '~': out += "\\textasciitilde{}"; break;
        case '^': out += "\\textasciicircum{}"; break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
          out += '\\';
          out += c;
          break;
        default: out += c;
      }
    }
    return out;
  }
};

std::string fixed(double v, int decimals) {
  const double unit = std::pow(10.0, -decimals);
  if (std::fabs(v) < 0.5 * unit) v = 0.0;  // no "-0.0"
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "+4.2", "-1.0"; a value that rounds to zero is "0.0".
std::string signed_fixed(double v, int decimals) {
  std::string s = fixed(v, decimals);
  if (s.find_first_not_of("0.") == std::string::npos) return s;
  return v > 0 ? "+" + s : s;
}

int decimals_of(const Column& c) { return c.percent ? 1 : 2; }
double scale_of(const Column& c) { return c.percent ? 100.0 : 1.0; }

std::string stat_cell(const Stat& s, int group_runs, double scale, int decimals, const Style& st) {
  std::string out = fixed(s.mean * scale, decimals);
  if (s.has_sem) out += st.pm() + fixed(s.sem * scale, decimals);
  if (s.n != group_runs) out += " (n=" + std::to_string(s.n) + ")";
  return out;
}

// A difference: signed mean ± sem, "(n=K)" as stat_cell.
std::string signed_stat_cell(const Stat& s, int group_runs, double scale, int decimals, const Style& st) {
  std::string out = signed_fixed(s.mean * scale, decimals);
  if (s.has_sem) out += st.pm() + fixed(s.sem * scale, decimals);
  if (s.n != group_runs) out += " (n=" + std::to_string(s.n) + ")";
  return out;
}

std::string margin_cell(const std::optional<double>& m, double scale, int decimals, const Style& st) {
  if (!m) return st.none();
  return signed_fixed(*m * scale, decimals) + " " + (*m > 0 ? st.yes() : st.no());
}

// A rectangular table: a header row and body rows; the first column is left-aligned.
struct Grid {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::set<std::size_t> rule_before;  // LaTeX: \midrule before these body rows
  std::string title;                  // LaTeX: a bold row spanning the table below the header
};

std::string markdown_table(const Grid& g) {
  std::ostringstream os;
  auto line = [&](const std::vector<std::string>& cells) {
    os << "|";
    for (const std::string& c : cells) os << " " << c << " |";
    os << "\n";
  };
  line(g.header);
  os << "|---|";
  for (std::size_t i = 1; i < g.header.size(); ++i) os << "---:|";
  os << "\n";
  for (const auto& r : g.rows) line(r);
  return os.str();
}

std::string latex_tabular(const Grid& g) {
  std::ostringstream os;
  os << "\\begin{tabular}{l" << std::string(g.header.size() - 1, 'r') << "}\n\\toprule\n";
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) os << (i ? " & " : "") << cells[i];
    os << " \\\\\n";
  };
  line(g.header);
  os << "\\midrule\n";
  if (!g.title.empty()) os << "\\multicolumn{" << g.header.size() << "}{l}{\\textbf{" << g.title << "}} \\\\\n";
  for (std::size_t i = 0; i < g.rows.size(); ++i) {
    if (g.rule_before.count(i)) os << "\\midrule\n";
    line(g.rows[i]);
  }
  os << "\\bottomrule\n\\end{tabular}\n";
  return os.str();
}

std::vector<std::string> column_headers(const GroupTable& t, const std::string& first, const Style& st) {
  std::vector<std::string> h{first};
  for (const Column& c : t.columns) h.push_back(st.text(c.header));
  if (t.has_average) h.push_back("Avg (8)");
  return h;
}

Grid results_grid(const GroupTable& t, const Style& st) {
  Grid g;
  g.header = column_headers(t, "Setting", st);
  g.title = st.text(t.name);
  for (const std::string& s : t.settings) {
    std::vector<std::string> row{st.text(setting_label(s))};
    for (const Column& c : t.columns) {
      const Stat* cell = t.cell(s, c.task);
      row.push_back(cell ? stat_cell(*cell, t.n_runs, scale_of(c), decimals_of(c), st) : st.none());
    }
    if (t.has_average) {
      auto it = t.average.find(s);
      row.push_back(it != t.average.end() ? stat_cell(it->second, t.n_runs, 100.0, 1, st) : st.none());
    }
    g.rows.push_back(row);
  }
  // The privacy-utility differences (tables.h), signed, with their sem.
  for (const Difference& d : t.differences) {
    if (&d == &t.differences.front()) g.rule_before.insert(g.rows.size());
    std::vector<std::string> row{st.text(d.kind.label)};
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const Column& c = t.columns[i];
      row.push_back(d.per_column[i] ? signed_stat_cell(*d.per_column[i], t.n_runs, scale_of(c), decimals_of(c), st)
                                    : st.none());
    }
    if (t.has_average) row.push_back(d.average ? signed_stat_cell(*d.average, t.n_runs, 100.0, 1, st) : st.none());
    g.rows.push_back(row);
  }
  return g;
}

Grid checks_grid(const GroupTable& t, const Style& st) {
  Grid g;
  g.header = column_headers(t, "Check", st);
  g.header.push_back("Holds");
  for (const Check& check : t.checks) {
    std::vector<std::string> row{check.name};
    int holds = 0, total = 0;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const Column& c = t.columns[i];
      std::string cell = margin_cell(check.margins[i], scale_of(c), decimals_of(c), st);
      const auto [held, compared] = check.runs_holding[i];
      if (check.margins[i] && compared > 1) cell += " (" + std::to_string(held) + "/" + std::to_string(compared) + ")";
      row.push_back(cell);
      if (check.margins[i]) {
        ++total;
        holds += *check.margins[i] > 0 ? 1 : 0;
      }
    }
    if (t.has_average) row.push_back(margin_cell(check.average_margin, 100.0, 1, st));
    row.push_back(std::to_string(holds) + "/" + std::to_string(total));
    g.rows.push_back(row);
  }
  return g;
}

Grid paper_grid(const GroupTable& t, const Style& st) {
  const PaperCells& p = *t.paper;
  Grid g;
  g.header = column_headers(t, "Setting", st);
  g.title = st.text(t.name) + " (published)";
  for (const std::string& s : paper_settings()) {
    std::vector<std::string> row{st.text(setting_label(s))};
    bool any = false;
    for (const Column& c : t.columns) {
      auto it = p.cells.find({s, c.task});
      any = any || it != p.cells.end();
      row.push_back(it != p.cells.end() ? fixed(it->second * scale_of(c), decimals_of(c)) : st.none());
    }
    if (t.has_average) {
      auto it = p.average.find(s);
      any = any || it != p.average.end();
      row.push_back(it != p.average.end() ? fixed(it->second * 100.0, 1) : st.none());
    }
    if (any) g.rows.push_back(row);
  }
  const std::size_t row_count_before_differences = g.rows.size();
  for (const DifferenceKind& kind : difference_kinds()) {
    std::vector<std::string> row{st.text(kind.label)};
    bool any = false;
    for (const Column& c : t.columns) {
      auto b = p.cells.find({kind.better, c.task});
      auto w = p.cells.find({kind.worse, c.task});
      const bool both = b != p.cells.end() && w != p.cells.end();
      any = any || both;
      row.push_back(both ? signed_fixed(margin(c, b->second, w->second) * scale_of(c), decimals_of(c)) : st.none());
    }
    if (t.has_average) {
      const std::optional<double> avg = paper_average_difference(p, kind);
      any = any || avg.has_value();
      row.push_back(avg ? signed_fixed(*avg * 100.0, 1) : st.none());
    }
    if (!any) continue;
    if (row_count_before_differences == g.rows.size()) g.rule_before.insert(g.rows.size());
    g.rows.push_back(row);
  }
  return g;
}

// The privacy-utility metrics side by side, one row per group and headline column (its 8-task
// average where it has one, else each task column): utility (Plug-in, the two emulators, the
// full model's references) and the differences of tables.h.
Grid privacy_utility_grid(const Analysis& a, const Style& st) {
  Grid g;
  g.header = {"Group", "Task", st.text(setting_label("plugin")), st.text(setting_label("zs_emulator")),
              st.text(setting_label("ft_emulator")), st.text(setting_label("zs_full")), st.text(setting_label("ft_full"))};
  for (const DifferenceKind& kind : difference_kinds()) g.header.push_back(st.text(kind.label));
  for (const GroupTable& t : a.groups) {
    if (t.differences.empty()) continue;
    auto add = [&](const std::string& task_header, auto stat_of, auto diff_of, double scale, int decimals) {
      std::vector<std::string> row{st.text(t.name), task_header};
      for (const char* s : {"plugin", "zs_emulator", "ft_emulator", "zs_full", "ft_full"}) {
        const Stat* v = stat_of(s);
        row.push_back(v ? stat_cell(*v, t.n_runs, scale, decimals, st) : st.none());
      }
      for (const DifferenceKind& kind : difference_kinds()) {
        const std::optional<Stat> d = diff_of(kind.name);
        row.push_back(d ? signed_stat_cell(*d, t.n_runs, scale, decimals, st) : st.none());
      }
      g.rows.push_back(row);
    };
    if (t.has_average) {
      add("Avg (8)",
          [&](const std::string& s) -> const Stat* {
            auto it = t.average.find(s);
            return it == t.average.end() ? nullptr : &it->second;
          },
          [&](const std::string& name) -> std::optional<Stat> {
            const Difference* d = t.difference(name);
            return d ? d->average : std::nullopt;
          },
          100.0, 1);
      continue;
    }
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const Column& c = t.columns[i];
      add(st.text(c.header), [&](const std::string& s) { return t.cell(s, c.task); },
          [&](const std::string& name) -> std::optional<Stat> {
            const Difference* d = t.difference(name);
            return d ? d->per_column[i] : std::nullopt;
          },
          scale_of(c), decimals_of(c));
    }
  }
  return g;
}

// Efficiency values: parameter counts as 1.2M / 1.3B, others with 0 or 2 decimals.
bool is_count(const std::string& name, const std::string& unit) {
  return unit == "parameters" || unit == "count" ||
         (name.size() >= 7 && name.compare(name.size() - 7, 7, "_params") == 0);
}

std::string count_text(double v) {
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else if (a >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string efficiency_header(const std::string& name, const std::string& unit) {
  if (name == "tokens_per_s") return "Tokens/s";
  if (name == "peak_memory_mib") return "Peak memory (MiB)";
  if (name == "trainable_params") return "Trainable params";
  if (name == "total_params") return "Total params";
  if (name == "train_s") return "Train time (s)";
  if (name == "exposed_comm_s") return "Exposed comm (s)";
  if (name == "device_train_s") return "Device time (s)";
  if (name == "peak_gpu_memory_mib") return "Peak GPU memory (MiB)";
  if (name == "flops_per_token") return "FLOPs/token";
  if (name == "mfu") return "MFU";
  return unit.empty() || is_count(name, unit) ? name : name + " (" + unit + ")";
}

// Efficiency names are "<stage>_<quantity>" for the stages of a recipe (pretrain_tokens_per_s,
// distill_train_s, ...) and a bare quantity for the fine-tuning (or measured method) itself.
// A quantity that ends with another comes before it (device_train_s before train_s).
const std::vector<std::string>& efficiency_quantities() {
  static const std::vector<std::string> q = {"tokens_per_s",      "device_train_s",      "train_s",
                                             "peak_memory_mib",   "peak_gpu_memory_mib", "trainable_params",
                                             "total_params",      "exposed_comm_s",      "step_seconds",
                                             "flops_per_token",   "mfu",                 "loss_scale",
                                             "skipped_steps"};
  return q;
}

std::pair<std::string, std::string> split_stage(const std::string& name) {
  const auto& qs = efficiency_quantities();
  if (std::find(qs.begin(), qs.end(), name) != qs.end()) return {"", name};  // the fine-tuning's own
  for (const std::string& q : qs) {
    if (name.size() > q.size() + 1 && name.compare(name.size() - q.size(), q.size(), q) == 0 &&
        name[name.size() - q.size() - 1] == '_')
      return {name.substr(0, name.size() - q.size() - 1), q};
  }
  return {"", name};
}

std::string stage_label(const std::string& stage) {
  if (stage.empty()) return "fine-tuning";
  if (stage == "pretrain") return "pretraining";
  if (stage == "distill") return "distillation";
  if (stage == "full_finetune") return "full fine-tuning";
  return stage;
}

// `seen` reordered: the names of `known` that occur, in that order, then the rest as seen.
std::vector<std::string> known_first(const std::vector<std::string>& known, const std::vector<std::string>& seen) {
  std::vector<std::string> out;
  for (const std::string& k : known) {
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) out.push_back(k);
  }
  for (const std::string& n : seen) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

int group_runs(const Analysis& a, const std::string& group) {
  for (const GroupTable& t : a.groups) {
    if (t.name == group) return t.n_runs;
  }
  return 0;
}

// One row per group, or per group and stage when some group has stages (the offsite recipe
// records pretraining, distillation, adapter and full fine-tuning); the columns are the
// quantities, known ones first.
Grid efficiency_grid(const Analysis& a, const Style& st) {
  std::vector<std::string> seen, stages;
  std::map<std::string, std::string> unit_of;
  bool staged = false;
  for (const EfficiencyRow& r : a.efficiency) {
    for (const std::string& n : r.names) {
      const auto [stage, q] = split_stage(n);
      staged = staged || !stage.empty();
      if (std::find(seen.begin(), seen.end(), q) == seen.end()) seen.push_back(q);
      if (std::find(stages.begin(), stages.end(), stage) == stages.end()) stages.push_back(stage);
      unit_of[q] = r.units.at(n);
    }
  }
  const std::vector<std::string> quantities = known_first(efficiency_quantities(), seen);
  const std::vector<std::string> order = known_first({"pretrain", "distill", "", "full_finetune"}, stages);  // pipeline order

  Grid g;
  g.header = {"Group"};
  if (staged) g.header.push_back("Stage");
  for (const std::string& q : quantities) g.header.push_back(st.text(efficiency_header(q, unit_of[q])));
  for (const EfficiencyRow& r : a.efficiency) {
    for (const std::string& stage : order) {
      std::vector<std::string> row{st.text(r.group)};
      if (staged) row.push_back(st.text(stage_label(stage)));
      bool any = false;
      for (const std::string& q : quantities) {
        const std::string n = stage.empty() ? q : stage + "_" + q;
        auto it = r.values.find(n);
        if (it == r.values.end()) {
          row.push_back(st.none());
          continue;
        }
        any = true;
        const Stat& s = it->second;
        std::string cell;
        if (is_count(n, r.units.at(n))) {
          cell = count_text(s.mean);
          if (s.n != group_runs(a, r.group)) cell += " (n=" + std::to_string(s.n) + ")";
        } else {
          cell = stat_cell(s, group_runs(a, r.group), 1.0, std::fabs(s.mean) >= 100 ? 0 : 2, st);
        }
        row.push_back(cell);
      }
      if (any) g.rows.push_back(row);
    }
  }
  return g;
}

std::string method_label(const std::string& setting) {
  if (setting == "ft") return "FT";
  if (setting == "ft_lora") return "FT + LoRA";
  if (setting == "ot") return "OT";
  if (setting == "ot_lora") return "OT + LoRA";
  return setting;
}

Grid paper_efficiency_grid(const std::vector<PaperNumber>& numbers, const Style& st) {
  std::vector<std::string> methods;
  std::map<std::string, std::map<std::string, double>> value;  // method -> metric -> value
  for (const PaperNumber& n : numbers) {
    if (std::find(methods.begin(), methods.end(), n.setting) == methods.end()) methods.push_back(n.setting);
    value[n.setting][n.metric] = n.value;
  }
  const auto& ft = value["ft"];
  Grid g;
  g.header = {"Method", "Tokens/s", "Memory (MB)", "Speed-up vs FT", "Memory vs FT"};
  for (const std::string& m : methods) {
    const auto& v = value[m];
    auto get = [&](const std::map<std::string, double>& from, const char* metric) -> std::optional<double> {
      auto it = from.find(metric);
      return it == from.end() ? std::nullopt : std::optional<double>(it->second);
    };
    auto tps = get(v, "tokens_per_s"), mem = get(v, "peak_memory_mb");
    auto ft_tps = get(ft, "tokens_per_s"), ft_mem = get(ft, "peak_memory_mb");
    g.rows.push_back({st.text(method_label(m)), tps ? fixed(*tps, 0) : st.none(), mem ? fixed(*mem, 0) : st.none(),
                      tps && ft_tps ? fixed(*tps / *ft_tps, 2) + "x" : st.none(),
                      m == "ft" ? std::string("1.00x") : mem && ft_mem ? fixed(*ft_mem / *mem, 2) + "x less" : st.none()});
  }
  return g;
}

std::string plural(std::size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string group_summary(const GroupTable& t) {
  std::vector<std::string> parts{plural(static_cast<std::size_t>(t.n_runs), "run")};
  if (!t.seeds.empty()) {
    std::string s = t.seeds.size() == 1 ? "seed " : "seeds ";
    for (std::size_t i = 0; i < t.seeds.size(); ++i) s += (i ? ", " : "") + std::to_string(t.seeds[i]);
    parts.push_back(s);
  }
  if (!t.recipe.empty()) parts.push_back("recipe " + t.recipe);
  for (const auto& [k, v] : t.sweep.items()) parts.push_back(k + " = " + (v.is_string() ? v.get<std::string>() : v.dump()));
  if (!t.paper_table.empty()) parts.push_back("paper " + t.paper_table);
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

std::string paper_source(const PaperRef& ref) {
  if (ref.table == "table1") return "PAPER.md Table 1, " + ref.model;
  if (ref.table == "table2") return "PAPER.md Table 2, " + ref.model;
  if (ref.table == "table3") return "PAPER.md Table 3, " + ref.model;
  if (ref.table == "efficiency") return "PAPER.md efficiency table, " + ref.model;
  if (ref.table == "gradot") return "PAPER.md 4, GradOT's OPT-1.3B table, row " + ref.model + " (8-task averages)";
  return "PAPER.md " + ref.table + ", " + ref.model;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

std::string render_markdown(const Analysis& a, const RunCollection& runs) {
  const Style st{false};
  std::ostringstream os;
  os << "# Offsite-tuning results\n\n";
  os << plural(static_cast<std::size_t>(a.n_runs), "completed run") << " in " << plural(a.groups.size(), "group")
     << ". A cell is the mean over the group's runs (seeds) ± the standard error of the mean; with one run, "
        "± the harness's standard error where it reported one. \"(n=K)\": only K of the group's runs have the "
        "cell. Accuracies ("
     << a.metric
     << " where a task has it) in %, other metrics as recorded. Privacy gap: OT Plug-in minus OT Emulator "
        "(for lower-is-better metrics Emulator minus Plug-in), so positive means the plug-in is better; "
        "the utility-lost rows likewise compare the full model with the emulator alone (Full ZS minus Emulator "
        "ZS, FT minus OT Emulator). A difference is the mean of the runs' own differences ± their standard "
        "error where every run has both cells. Avg (8): the mean over the eight tasks, WikiText excluded.\n";
  for (const std::string& note : a.notes) os << "\nNote: " << note << ".\n";

  for (const GroupTable& t : a.groups) {
    if (!t.has_eval()) continue;
    os << "\n## " << st.text(t.name) << "\n\n" << st.text(group_summary(t)) << "\n\n";
    os << markdown_table(results_grid(t, st));
    if (!t.checks.empty()) {
      os << "\nChecks (PAPER.md 2.5; a positive margin of the means says the paper's pattern holds; (k/n): it "
            "holds in k of the n runs; Holds: the columns where the means hold):\n\n"
         << markdown_table(checks_grid(t, st));
    }
    if (t.paper) os << "\nPublished (" << paper_source(t.paper->ref) << "):\n\n" << markdown_table(paper_grid(t, st));
  }

  const Grid privacy = privacy_utility_grid(a, st);
  if (!privacy.rows.empty()) {
    os << "\n## Privacy and utility\n\nWhat the data owner's emulator can do alone against what the plug-in "
          "gives: per group, the 8-task average where it has one, else each task. Privacy gap: OT Plug-in minus OT "
          "Emulator; utility lost: the full model minus the emulator, zero-shot and fine-tuned (positive: the "
          "emulator is worse, as offsite-tuning needs). Differences are the mean of the runs' own differences ± its "
          "sem where every run has both cells.\n\n"
       << markdown_table(privacy);
  }

  if (!a.efficiency.empty() || !a.paper_efficiency.empty()) {
    os << "\n## Efficiency\n";
    if (!a.efficiency.empty()) os << "\n" << markdown_table(efficiency_grid(a, st));
    for (const auto& [ref, numbers] : a.paper_efficiency) {
      os << "\nPublished (" << paper_source(ref)
         << "; units are not printed in the paper, read as tokens/s and MB):\n\n"
         << markdown_table(paper_efficiency_grid(numbers, st));
    }
  }

  if (!runs.skipped.empty() || !runs.ignored.empty()) {
    os << "\n## Not included\n\n";
    for (const SkippedRun& s : runs.skipped) os << "- `" << s.rel_path << "`: " << st.text(s.reason) << "\n";
    if (!runs.ignored.empty()) {
      os << "- " << plural(runs.ignored.size(), "leftover temporary file") << " of killed writers:";
      for (std::size_t i = 0; i < runs.ignored.size(); ++i) os << (i ? ", `" : " `") << runs.ignored[i] << "`";
      os << "\n";
    }
  }
  return os.str();
}

std::string render_latex(const Analysis& a) {
  const Style st{true};
  std::ostringstream os;
  os << "% Offsite-tuning results (ot analyze). Needs \\usepackage{booktabs} and \\usepackage{amssymb}.\n"
     << "% Cells: mean over seeds $\\pm$ standard error of the mean; accuracies in \\%.\n";
  auto float_env = [&](const std::string& body, const std::string& caption) {
    os << "\n\\begin{table}[t]\n\\centering\n\\small\n" << body << "\\caption{" << caption << "}\n\\end{table}\n";
  };
  for (const GroupTable& t : a.groups) {
    if (!t.has_eval()) continue;
    os << "\n% " << t.name << ": " << group_summary(t) << "\n";
    float_env(latex_tabular(results_grid(t, st)),
              st.text(t.name) + ": mean $\\pm$ standard error over " + plural(static_cast<std::size_t>(t.n_runs), "run") + ".");
    if (!t.checks.empty()) {
      float_env(latex_tabular(checks_grid(t, st)),
                st.text(t.name) + ": checks of PAPER.md 2.5 (a positive margin of the means says the pattern "
                                  "holds; (k/n): it holds in k of the n runs; Holds: the columns where the means hold).");
    }
    if (t.paper) float_env(latex_tabular(paper_grid(t, st)), "Published: " + st.text(paper_source(t.paper->ref)) + ".");
  }
  const Grid privacy = privacy_utility_grid(a, st);
  if (!privacy.rows.empty()) {
    float_env(latex_tabular(privacy),
              "Privacy and utility: the emulator alone against the plug-in (8-task average, else each task); "
              "differences are better minus worse, mean $\\pm$ standard error over paired runs.");
  }
  if (!a.efficiency.empty()) float_env(latex_tabular(efficiency_grid(a, st)), "Efficiency.");
  for (const auto& [ref, numbers] : a.paper_efficiency) {
    float_env(latex_tabular(paper_efficiency_grid(numbers, st)),
              "Published: " + st.text(paper_source(ref)) + " (units read as tokens/s and MB).");
  }
  return os.str();
}

std::string render_csv(const Analysis& a) {
  std::ostringstream os;
  os << "group,setting,task,metric,mean,sem,n_seeds,paper\n";
  for (const GroupTable& t : a.groups) {
    for (const LongRow& r : t.long_rows) {
      os << csv_field(t.name) << "," << csv_field(r.setting) << "," << csv_field(r.task) << ","
         << csv_field(r.metric) << "," << csv_number(r.stat.mean) << ","
         << (r.stat.has_sem ? csv_number(r.stat.sem) : "") << "," << r.stat.n << ","
         << (r.paper ? csv_number(*r.paper) : "") << "\n";
    }
  }
  for (const EfficiencyRow& r : a.efficiency) {
    for (const std::string& n : r.names) {
      const Stat& s = r.values.at(n);
      os << csv_field(r.group) << ",efficiency,," << csv_field(n) << "," << csv_number(s.mean) << ","
         << (s.has_sem ? csv_number(s.sem) : "") << "," << s.n << ",\n";
    }
  }
  return os.str();
}

}  // namespace ot::analysis
