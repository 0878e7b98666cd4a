// eval/settings.cpp: paper settings, privacy gap and result printing (see settings.h).
#include "eval/settings.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "util/error.h"

namespace ot {

const std::vector<Setting>& all_settings() {
  static const std::vector<Setting> v{Setting::kZsFull, Setting::kZsEmulator, Setting::kFtEmulator,
                                      Setting::kPlugin, Setting::kFtFull};
  return v;
}

std::string setting_name(Setting s) {
  switch (s) {
    case Setting::kZsFull: return "zs_full";
    case Setting::kZsEmulator: return "zs_emulator";
    case Setting::kFtEmulator: return "ft_emulator";
    case Setting::kPlugin: return "plugin";
    case Setting::kFtFull: return "ft_full";
  }
  return "?";
}

std::string setting_description(Setting s) {
  switch (s) {
    case Setting::kZsFull: return "Full ZS";
    case Setting::kZsEmulator: return "Emulator ZS";
    case Setting::kFtEmulator: return "OT Emulator";
    case Setting::kPlugin: return "OT Plug-in";
    case Setting::kFtFull: return "FT";
  }
  return "?";
}

Setting parse_setting(const std::string& name) {
  std::string valid;
  for (Setting s : all_settings()) {
    if (setting_name(s) == name) return s;
    valid += (valid.empty() ? "" : ", ") + setting_name(s);
  }
  fail("unknown setting '", name, "' (expected one of: ", valid, ")");
}

bool lower_is_better(const std::string& metric) {
  return metric.find("perplexity") != std::string::npos || metric == "bits_per_byte" || metric == "loss";
}

std::vector<PrivacyGap> privacy_gap(const std::vector<TaskResult>& plugin, const std::vector<TaskResult>& ft_emulator) {
  std::vector<PrivacyGap> out;
  for (const TaskResult& p : plugin) {
    for (const TaskResult& e : ft_emulator) {
      if (e.task != p.task || e.metric != p.metric) continue;
      PrivacyGap g{p.task, p.metric, p.value, e.value, p.value - e.value};
      if (lower_is_better(p.metric)) g.gap = -g.gap;
      out.push_back(g);
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
