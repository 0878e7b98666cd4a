// eval/vocabulary.cpp: the paper's settings, tasks, metric directions and pattern checks (see
// vocabulary.h).
#include "eval/vocabulary.h"

#include <algorithm>
#include <map>

#include "util/error.h"

namespace ot {

namespace {

struct SettingWords {
  Setting setting;
  const char* name;
  const char* label;
};

// In the paper's table order (paper_settings()).
const std::vector<SettingWords>& setting_words() {
  static const std::vector<SettingWords> v{{Setting::kZsFull, "zs_full", "Full ZS"},
                                           {Setting::kZsEmulator, "zs_emulator", "Emulator ZS"},
                                           {Setting::kFtFull, "ft_full", "FT"},
                                           {Setting::kFtEmulator, "ft_emulator", "OT Emulator"},
                                           {Setting::kPlugin, "plugin", "OT Plug-in"}};
  return v;
}

const SettingWords* words_of(Setting s) {
  for (const SettingWords& w : setting_words())
    if (w.setting == s) return &w;
  return nullptr;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const std::vector<Setting>& all_settings() {
  static const std::vector<Setting> v{Setting::kZsFull, Setting::kZsEmulator, Setting::kFtEmulator,
                                      Setting::kPlugin, Setting::kFtFull};
  return v;
}

std::string setting_name(Setting s) { return words_of(s) ? words_of(s)->name : "?"; }

std::string setting_label(Setting s) { return words_of(s) ? words_of(s)->label : "?"; }

Setting parse_setting(const std::string& name) {
  std::string valid;
  for (Setting s : all_settings()) {
    if (setting_name(s) == name) return s;
    valid += (valid.empty() ? "" : ", ") + setting_name(s);
  }
  fail("unknown setting '", name, "' (expected one of: ", valid, ")");
}

const std::vector<std::string>& paper_settings() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> names;
    for (const SettingWords& w : setting_words()) names.emplace_back(w.name);
    return names;
  }();
  return v;
}

std::string setting_label(const std::string& setting) {
  for (const SettingWords& w : setting_words())
    if (setting == w.name) return w.label;
  return setting;
}

const std::vector<std::string>& paper_tasks() {
  static const std::vector<std::string> v{"openbookqa", "piqa", "arc_easy", "arc_challenge", "hellaswag",
                                          "sciq",       "webqs", "race",    "wikitext"};
  return v;
}

const std::vector<std::string>& average_tasks() {
  static const std::vector<std::string> v(paper_tasks().begin(), paper_tasks().begin() + 8);
  return v;
}

std::string task_label(const std::string& task) {
  static const std::map<std::string, std::string> labels{
      {"openbookqa", "OBQA"}, {"piqa", "PIQA"},   {"arc_easy", "ARC-E"}, {"arc_challenge", "ARC-C"},
      {"hellaswag", "HellaSwag"}, {"sciq", "SciQ"}, {"webqs", "WebQs"},  {"race", "RACE"},
      {"wikitext", "WikiText"}};
  auto it = labels.find(task);
  return it == labels.end() ? task : it->second;
}

bool is_accuracy_metric(const std::string& metric) { return metric == "acc" || metric == "acc_norm"; }

bool lower_is_better(const std::string& metric) {
  return metric == "ppl" || metric == "loss" || metric == "bits_per_byte" ||
         metric.find("perplexity") != std::string::npos || ends_with(metric, "_ppl") || ends_with(metric, "_loss");
}

double metric_margin(const std::string& metric, double better, double worse) {
  return lower_is_better(metric) ? worse - better : better - worse;
}

const std::vector<PatternCheck>& pattern_checks() {
  static const std::vector<PatternCheck> v{{"Emulator ZS below Full ZS", "zs_full", "zs_emulator"},
                                           {"Plug-in above Full ZS", "plugin", "zs_full"},
                                           {"Plug-in above OT Emulator", "plugin", "ft_emulator"}};
  return v;
}

std::vector<PatternMargins> pattern_margins(const std::vector<std::pair<std::string, TaskResult>>& rows) {
  std::map<std::pair<std::string, std::string>, std::map<std::string, double>> by;
  std::vector<std::pair<std::string, std::string>> order;
  for (const auto& [s, r] : rows) {
    auto k = std::make_pair(r.task, r.metric);
    if (!by.count(k)) order.push_back(k);
    by[k][s] = r.value;
  }
  const std::vector<PatternCheck>& checks = pattern_checks();
  std::vector<PatternMargins> out;
  for (const auto& k : order) {
    if (k.second == "loss" || k.second == "byte_perplexity") continue;
    const auto& m = by[k];
    if (!m.count("zs_full") || !m.count("zs_emulator") || !m.count("plugin") || !m.count("ft_emulator")) continue;
    auto margin_of = [&](const PatternCheck& c) { return metric_margin(k.second, m.at(c.better), m.at(c.worse)); };
    PatternMargins p;
    p.task = k.first;
    p.metric = k.second;
    p.emulator_below_full = margin_of(checks[0]);
    p.plugin_above_full = margin_of(checks[1]);
    p.plugin_above_ft_emulator = margin_of(checks[2]);
    out.push_back(p);
  }
  return out;
}

nlohmann::json vocabulary_json(const std::vector<std::string>& metrics) {
  nlohmann::json settings = nlohmann::json::array();
  for (const std::string& s : paper_settings()) settings.push_back({{"name", s}, {"label", setting_label(s)}});
  nlohmann::json tasks = nlohmann::json::array();
  for (const std::string& t : paper_tasks()) {
    const bool averaged = std::find(average_tasks().begin(), average_tasks().end(), t) != average_tasks().end();
    tasks.push_back({{"name", t}, {"label", task_label(t)}, {"in_average", averaged}});
  }
  nlohmann::json checks = nlohmann::json::array();
  for (const PatternCheck& c : pattern_checks())
    checks.push_back({{"name", c.name}, {"better", c.better}, {"worse", c.worse}});
  nlohmann::json directions = nlohmann::json::object();
  for (const std::string& m : metrics)
    directions[m] = {{"accuracy", is_accuracy_metric(m)}, {"lower_is_better", lower_is_better(m)}};
  return {{"settings", settings}, {"tasks", tasks}, {"checks", checks}, {"metrics", directions}};
}

}  // namespace ot
