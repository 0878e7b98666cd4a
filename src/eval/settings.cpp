// eval/settings.cpp: privacy gap and result printing (see settings.h).
#include "eval/settings.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "util/error.h"

namespace ot {

std::vector<PrivacyGap> privacy_gap(const std::vector<TaskResult>& plugin, const std::vector<TaskResult>& ft_emulator) {
  std::vector<PrivacyGap> out;
  for (const TaskResult& p : plugin) {
    for (const TaskResult& e : ft_emulator) {
      if (e.task != p.task || e.metric != p.metric) continue;
      out.push_back({p.task, p.metric, p.value, e.value, metric_margin(p.metric, p.value, e.value)});
      break;
    }
  }
  return out;
}

double mean_privacy_gap(const std::vector<PrivacyGap>& gaps, const std::string& metric) {
  double sum = 0.0;
  int64_t n = 0;
  for (const PrivacyGap& g : gaps) {
    if (g.metric != metric) continue;
    sum += g.gap;
    ++n;
  }
  OT_REQUIRE(n > 0, "no task has metric '", metric, "' in both the plug-in and the emulator results");
  return sum / static_cast<double>(n);
}

namespace {

std::string fmt4(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// Display width: code points, so "±" (2 bytes) counts as one column.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::string make_table(const std::vector<TaskResult>& results) {
  const std::vector<std::string> head{"Task", "Version", "Metric", "Value", "", "Stderr"};
  const std::vector<bool> right{false, true, false, true, false, true};
  std::vector<std::vector<std::string>> rows;
  std::string prev_task;
  bool first = true;
  for (const TaskResult& r : results) {
    const bool new_task = first || r.task != prev_task;
    first = false;
    prev_task = r.task;
    rows.push_back({new_task ? r.task : "", new_task ? std::to_string(r.version) : "", r.metric, fmt4(r.value),
                    r.std_error ? "±" : "", r.std_error ? fmt4(*r.std_error) : ""});
  }
  std::vector<size_t> w(head.size(), 3);
  for (size_t c = 0; c < head.size(); ++c) {
    w[c] = std::max(w[c], width(head[c]));
    for (const auto& row : rows) w[c] = std::max(w[c], width(row[c]));
  }
  std::ostringstream os;
  os << '|';
  for (size_t c = 0; c < head.size(); ++c) {
    const size_t pad = w[c] - width(head[c]);
    os << std::string(pad / 2, ' ') << head[c] << std::string(pad - pad / 2, ' ') << '|';
  }
  os << "\n|";
  for (size_t c = 0; c < head.size(); ++c) os << (right[c] ? std::string(w[c] - 1, '-') + ":" : std::string(w[c], '-')) << '|';
  os << '\n';
  for (const auto& row : rows) {
    os << '|';
    for (size_t c = 0; c < head.size(); ++c) {
      const std::string fill(w[c] - width(row[c]), ' ');
      os << (right[c] ? fill + row[c] : row[c] + fill) << '|';
    }
    os << '\n';
  }
  return os.str();
}

nlohmann::json results_json(const std::vector<TaskResult>& results, const nlohmann::json& config) {
  nlohmann::json res = nlohmann::json::object(), versions = nlohmann::json::object();
  for (const TaskResult& r : results) {
    res[r.task][r.metric] = r.value;
    if (r.std_error) res[r.task][r.metric + "_stderr"] = *r.std_error;
    versions[r.task] = r.version;
  }
  return {{"results", res}, {"versions", versions}, {"config", config}};
}

}  // namespace ot
