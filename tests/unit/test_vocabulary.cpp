// tests/unit/test_vocabulary.cpp: the paper's vocabulary (eval/vocabulary.h): settings in the
// table's order with their labels, task columns, the direction of every kind of metric the
// runs record (validation_loss, emulator_ppl and ppl included), the three pattern checks and
// the margins one run prints, and the summary.json form of all of it.
#include <gtest/gtest.h>

#include "eval/vocabulary.h"
#include "util/error.h"

namespace {

TEST(Vocabulary, SettingsInTableOrderWithLabels) {
  EXPECT_EQ(ot::paper_settings(),
            (std::vector<std::string>{"zs_full", "zs_emulator", "ft_full", "ft_emulator", "plugin"}));
  std::vector<std::string> labels;
  for (const std::string& s : ot::paper_settings()) labels.push_back(ot::setting_label(s));
  EXPECT_EQ(labels, (std::vector<std::string>{"Full ZS", "Emulator ZS", "FT", "OT Emulator", "OT Plug-in"}));
  EXPECT_EQ(ot::setting_label("distilled_emulator"), "distilled_emulator") << "other names as given";
  // The enum and the names agree, in PAPER.md 2.4's order.
  std::vector<std::string> names;
  for (ot::Setting s : ot::all_settings()) {
    names.push_back(ot::setting_name(s));
    EXPECT_EQ(ot::setting_label(s), ot::setting_label(ot::setting_name(s)));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"zs_full", "zs_emulator", "ft_emulator", "plugin", "ft_full"}));
  EXPECT_EQ(ot::parse_setting("plugin"), ot::Setting::kPlugin);
  try {
    ot::parse_setting("plug-in");
    ADD_FAILURE() << "no error";
  } catch (const ot::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown setting 'plug-in' (expected one of: zs_full, zs_emulator, ft_emulator, plugin, ft_full)");
  }
}

TEST(Vocabulary, TasksInColumnOrderWithLabels) {
  EXPECT_EQ(ot::paper_tasks(), (std::vector<std::string>{"openbookqa", "piqa", "arc_easy", "arc_challenge", "hellaswag",
                                                         "sciq", "webqs", "race", "wikitext"}));
  EXPECT_EQ(ot::average_tasks().size(), 8u);
  EXPECT_EQ(ot::average_tasks().back(), "race");
  EXPECT_EQ(ot::task_label("arc_challenge"), "ARC-C");
  EXPECT_EQ(ot::task_label("wikitext"), "WikiText");
  EXPECT_EQ(ot::task_label("brown_j"), "brown_j");
}

TEST(Vocabulary, PerplexitiesAndLossesAreLowerIsBetter) {
  for (const char* m : {"ppl", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "loss",
                        "validation_loss", "emulator_ppl", "plugin_ppl", "distill_loss"}) {
    EXPECT_TRUE(ot::lower_is_better(m)) << m;
    EXPECT_FALSE(ot::is_accuracy_metric(m)) << m;
  }
  for (const char* m : {"acc", "acc_norm", "f1"}) EXPECT_FALSE(ot::lower_is_better(m)) << m;
  EXPECT_TRUE(ot::is_accuracy_metric("acc"));
  EXPECT_TRUE(ot::is_accuracy_metric("acc_norm"));
  EXPECT_DOUBLE_EQ(ot::metric_margin("acc", 0.7, 0.6), 0.7 - 0.6);
  EXPECT_DOUBLE_EQ(ot::metric_margin("validation_loss", 2.0, 2.5), 0.5);
  EXPECT_DOUBLE_EQ(ot::metric_margin("ppl", 30.0, 20.0), -10.0);
}

TEST(Vocabulary, ThreePatternChecks) {
  const auto& checks = ot::pattern_checks();
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0].name, "Emulator ZS below Full ZS");
  EXPECT_EQ(checks[0].better, "zs_full");
  EXPECT_EQ(checks[0].worse, "zs_emulator");
  EXPECT_EQ(checks[1].name, "Plug-in above Full ZS");
  EXPECT_EQ(checks[1].better, "plugin");
  EXPECT_EQ(checks[1].worse, "zs_full");
  EXPECT_EQ(checks[2].name, "Plug-in above OT Emulator");
  EXPECT_EQ(checks[2].better, "plugin");
  EXPECT_EQ(checks[2].worse, "ft_emulator");
}

ot::TaskResult result(const std::string& task, const std::string& metric, double value) {
  ot::TaskResult r;
  r.task = task;
  r.metric = metric;
  r.value = value;
  return r;
}

TEST(Vocabulary, PatternMarginsOfOneRun) {
  std::vector<std::pair<std::string, ot::TaskResult>> rows;
  auto add = [&](const std::string& task, const std::string& metric, double zs_full, double zs_emulator,
                 double ft_emulator, double plugin) {
    rows.emplace_back("zs_full", result(task, metric, zs_full));
    rows.emplace_back("zs_emulator", result(task, metric, zs_emulator));
    rows.emplace_back("ft_emulator", result(task, metric, ft_emulator));
    rows.emplace_back("plugin", result(task, metric, plugin));
  };
  add("piqa", "acc", 0.70, 0.60, 0.65, 0.75);
  add("corpus", "perplexity", 30.0, 40.0, 28.0, 25.0);
  add("corpus", "loss", 3.4, 3.7, 3.3, 3.2);        // repeats the perplexity: skipped
  add("wiki", "byte_perplexity", 2.0, 3.0, 1.9, 1.8);  // repeats bits_per_byte: skipped
  add("brown", "ppl", 30.0, 25.0, 28.0, 31.0);         // the pattern fails on every check
  rows.emplace_back("zs_full", result("arc_easy", "acc", 0.5));  // incomplete: skipped

  const std::vector<ot::PatternMargins> m = ot::pattern_margins(rows);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].task, "piqa");
  EXPECT_DOUBLE_EQ(m[0].emulator_below_full, 0.70 - 0.60);
  EXPECT_DOUBLE_EQ(m[0].plugin_above_full, 0.75 - 0.70);
  EXPECT_DOUBLE_EQ(m[0].plugin_above_ft_emulator, 0.75 - 0.65);
  EXPECT_TRUE(m[0].holds());
  EXPECT_EQ(m[1].metric, "perplexity");
  EXPECT_DOUBLE_EQ(m[1].emulator_below_full, 10.0);
  EXPECT_DOUBLE_EQ(m[1].plugin_above_full, 5.0);
  EXPECT_DOUBLE_EQ(m[1].plugin_above_ft_emulator, 3.0);
  EXPECT_TRUE(m[1].holds());
  EXPECT_EQ(m[2].metric, "ppl");
  EXPECT_DOUBLE_EQ(m[2].emulator_below_full, -5.0) << "ppl is lower-is-better";
  EXPECT_DOUBLE_EQ(m[2].plugin_above_full, -1.0);
  EXPECT_DOUBLE_EQ(m[2].plugin_above_ft_emulator, -3.0);
  EXPECT_FALSE(m[2].holds());
}

TEST(Vocabulary, JsonForThePlotScript) {
  const nlohmann::json v = ot::vocabulary_json({"acc", "validation_loss", "brown_ppl"});
  ASSERT_EQ(v["settings"].size(), 5u);
  EXPECT_EQ(v["settings"][0], (nlohmann::json{{"name", "zs_full"}, {"label", "Full ZS"}}));
  EXPECT_EQ(v["settings"][4], (nlohmann::json{{"name", "plugin"}, {"label", "OT Plug-in"}}));
  ASSERT_EQ(v["tasks"].size(), 9u);
  EXPECT_EQ(v["tasks"][0], (nlohmann::json{{"name", "openbookqa"}, {"label", "OBQA"}, {"in_average", true}}));
  EXPECT_EQ(v["tasks"][8]["in_average"], false);
  ASSERT_EQ(v["checks"].size(), 3u);
  EXPECT_EQ(v["checks"][2], (nlohmann::json{{"name", "Plug-in above OT Emulator"}, {"better", "plugin"},
                                            {"worse", "ft_emulator"}}));
  EXPECT_EQ(v["metrics"]["acc"], (nlohmann::json{{"accuracy", true}, {"lower_is_better", false}}));
  EXPECT_EQ(v["metrics"]["validation_loss"]["lower_is_better"], true);
  EXPECT_EQ(v["metrics"]["brown_ppl"]["lower_is_better"], true);
  EXPECT_EQ(v["metrics"].size(), 3u);
}

}  // namespace
