// experiment/summary.cpp: see summary.h.
#include "experiment/summary.h"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "eval/vocabulary.h"

namespace ot::experiment {

std::string format_metric_value(const std::string& metric, double v) {
  std::ostringstream os;
  if (metric == "acc" || metric == "acc_norm") os << std::fixed << std::setprecision(1) << 100.0 * v;
  else os << std::fixed << std::setprecision(metric == "bits_per_byte" ? 4 : 3) << v;
  return os.str();
}

// The run's results as a settings x (task, metric) table, and the paper's pattern per column.
void print_run_summary(const std::string& run_id, const std::vector<std::pair<std::string, TaskResult>>& rows) {
  std::vector<std::string> settings;
  std::vector<std::pair<std::string, std::string>> cols;
  std::map<std::pair<std::string, std::pair<std::string, std::string>>, double> v;
  for (const auto& [s, r] : rows) {
    if (r.metric == "loss" || r.metric == "byte_perplexity") continue;
    if (std::find(settings.begin(), settings.end(), s) == settings.end()) settings.push_back(s);
    auto col = std::make_pair(r.task, r.metric);
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
    v[{s, col}] = r.value;
  }
  if (settings.empty()) return;
  std::ostringstream os;
  os << "\nrun " << run_id << "\n| setting |";
  for (const auto& c : cols) os << " " << c.first << " " << c.second << " |";
  os << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---:|";
  os << "\n";
  for (const std::string& s : settings) {
    os << "| " << s << " |";
    for (const auto& c : cols) {
      auto it = v.find({s, c});
      os << " " << (it == v.end() ? "" : format_metric_value(c.second, it->second)) << " |";
    }
    os << "\n";
  }
  for (const PatternMargins& m : pattern_margins(rows)) {
    os << "pattern on " << m.task << " " << m.metric << ": zs_emulator worse than zs_full by "
       << format_metric_value(m.metric, m.emulator_below_full) << ", plugin better than zs_full by "
       << format_metric_value(m.metric, m.plugin_above_full) << ", plugin better than ft_emulator by "
       << format_metric_value(m.metric, m.plugin_above_ft_emulator) << (m.holds() ? "  [holds]" : "  [does NOT hold]") << "\n";
  }
  std::cout << os.str() << std::flush;
}

}  // namespace ot::experiment
