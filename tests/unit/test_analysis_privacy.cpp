// tests/unit/test_analysis_privacy.cpp: the privacy-utility metrics of `ot analyze` (tables.h
// differences: the privacy gap and the utility the emulator loses, paired over seeds or
// from two cells' sems), GradOT's published averages (analysis/paper_numbers.csv) beside a
// group that points at them, and what summary.json carries for the figures. The runs are
// built in memory (RunData), with numbers chosen so that every expected value is worked by hand.
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/figures.h"
#include "analysis/paper.h"
#include "analysis/render.h"
#include "analysis/tables.h"
#include "test_support.h"

namespace ot::analysis {
namespace {

RunData make_run(const std::string& rel, std::int64_t seed, const std::string& group, const std::string& paper_table,
                 const std::vector<results::EvalRow>& eval) {
  RunData r;
  r.path = "/results/" + rel;
  r.rel_path = rel;
  r.run_id = rel;
  r.label = group;
  r.group_id = group;
  r.paper_table = paper_table;
  r.seed = seed;
  r.eval = eval;
  return r;
}

results::EvalRow ev(const std::string& setting, const std::string& task, const std::string& metric, double value,
                    double stderr_value = 0) {
  return {setting, task, metric, value, stderr_value, 100};
}

// (A C string, not a std::string: GCC 14 takes a temporary argument of a function that
// returns a reference for a possibly dangling one.)
const Difference& find_difference(const GroupTable& t, const char* name) {
  const Difference* d = t.difference(name);
  if (d == nullptr) throw std::runtime_error(std::string("no difference ") + name + " in " + t.name);
  return *d;
}

std::size_t column_of(const GroupTable& t, const std::string& task) {
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i].task == task) return i;
  }
  throw std::runtime_error("no column " + task);
}

// Two seeds. PIQA: Plug-in 0.70 / 0.74, OT Emulator 0.60 / 0.62 -> paired differences 0.10,
// 0.12: mean 0.11, sem = sd / sqrt(2) = 0.0141421 / 1.41421 = 0.01. Full ZS 0.50 / 0.52, but
// Emulator ZS only in seed 1 (0.40, harness stderr 0.02): unpaired, 0.51 - 0.40 = 0.11 with
// sqrt(0.01^2 + 0.02^2) = 0.0223607, n = 1. WikiText (lower is better): Plug-in 13 / 14,
// OT Emulator 15 / 17 -> gaps 2, 3: mean 2.5, sem 0.5. No FT: no ft_emulator_gap.
std::vector<RunData> two_seeds() {
  return {make_run("a/s1.h5", 1, "A", "",
                   {ev("plugin", "piqa", "acc", 0.70), ev("ft_emulator", "piqa", "acc", 0.60),
                    ev("zs_full", "piqa", "acc", 0.50), ev("zs_emulator", "piqa", "acc", 0.40, 0.02),
                    ev("plugin", "wikitext", "perplexity", 13), ev("ft_emulator", "wikitext", "perplexity", 15)}),
          make_run("a/s2.h5", 2, "A", "",
                   {ev("plugin", "piqa", "acc", 0.74), ev("ft_emulator", "piqa", "acc", 0.62),
                    ev("zs_full", "piqa", "acc", 0.52), ev("plugin", "wikitext", "perplexity", 14),
                    ev("ft_emulator", "wikitext", "perplexity", 17)})};
}

TEST(AnalysisPrivacy, DifferencesArePairedOverSeeds) {
  const Analysis a = analyze(two_seeds(), "acc", nullptr);
  ASSERT_EQ(a.groups.size(), 1u);
  const GroupTable& t = a.groups[0];
  ASSERT_EQ(t.differences.size(), 2u) << "no FT cells: no ft_emulator_gap";
  EXPECT_EQ(t.differences[0].kind.name, "privacy_gap");
  EXPECT_EQ(t.differences[1].kind.name, "zs_emulator_gap");
  EXPECT_EQ(t.difference("ft_emulator_gap"), nullptr);

  const Difference& gap = find_difference(t, "privacy_gap");
  const auto& piqa = gap.per_column[column_of(t, "piqa")];
  ASSERT_TRUE(piqa.has_value());
  EXPECT_NEAR(piqa->mean, 0.11, 1e-12);
  EXPECT_NEAR(piqa->sem, 0.01, 1e-12);
  EXPECT_EQ(piqa->n, 2);
  const auto& wikitext = gap.per_column[column_of(t, "wikitext")];
  ASSERT_TRUE(wikitext.has_value());
  EXPECT_NEAR(wikitext->mean, 2.5, 1e-12) << "lower is better: OT Emulator minus Plug-in";
  EXPECT_NEAR(wikitext->sem, 0.5, 1e-12);
  EXPECT_FALSE(gap.average.has_value()) << "two tasks: no 8-task average";

  const Difference& zs = find_difference(t, "zs_emulator_gap");
  const auto& zs_piqa = zs.per_column[column_of(t, "piqa")];
  ASSERT_TRUE(zs_piqa.has_value());
  EXPECT_NEAR(zs_piqa->mean, 0.11, 1e-12);
  EXPECT_NEAR(zs_piqa->sem, std::sqrt(0.01 * 0.01 + 0.02 * 0.02), 1e-12) << "unpaired: the two cells' sems";
  EXPECT_EQ(zs_piqa->n, 1);
  EXPECT_FALSE(zs.per_column[column_of(t, "wikitext")].has_value());

  // The long rows (tables.csv) carry them with their sem.
  bool found = false;
  for (const LongRow& r : t.long_rows) {
    if (r.setting == "privacy_gap" && r.task == "piqa") {
      found = true;
      EXPECT_NEAR(r.stat.mean, 0.11, 1e-12);
      EXPECT_TRUE(r.stat.has_sem);
      EXPECT_NEAR(r.stat.sem, 0.01, 1e-12);
    }
  }
  EXPECT_TRUE(found);
  const std::string csv = render_csv(a);
  EXPECT_NE(csv.find("A,zs_emulator_gap,piqa,acc,0.11,0.02236067977,1,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("A,privacy_gap,wikitext,perplexity,2.5,0.5,2,\n"), std::string::npos) << csv;

  // The Markdown rows and the privacy-utility section.
  RunCollection runs;
  runs.root = "/results";
  const std::string md = render_markdown(a, runs);
  EXPECT_NE(md.find("| Privacy gap (Plug-in minus OT Emulator) | +11.0 ± 1.0 | +2.50 ± 0.50 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Emulator ZS utility lost (Full ZS minus Emulator ZS) | +11.0 ± 2.2 (n=1) | – |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("## Privacy and utility\n"), std::string::npos) << md;
  EXPECT_NE(md.find("| A | PIQA | 72.0 ± 2.0 | 40.0 ± 2.0 (n=1) | 61.0 ± 1.0 | 51.0 ± 1.0 | – | +11.0 ± 1.0 | "
                    "+11.0 ± 2.2 (n=1) | – |"),
            std::string::npos)
      << md;
}

// Eight tasks, two seeds, every setting: the average differences are the runs' own
// differences of averages. Seed 1: every cell of a setting at base[s], seed 2 at base[s] +
// step[s], so that the gap of averages is base/step differences worked by hand.
std::vector<RunData> eight_tasks(const std::string& paper_table) {
  const std::vector<std::string> tasks = {"openbookqa", "piqa", "arc_easy", "arc_challenge",
                                          "hellaswag",  "sciq", "webqs",    "race"};
  const std::vector<std::pair<std::string, std::pair<double, double>>> settings = {
      {"zs_full", {0.40, 0.02}}, {"zs_emulator", {0.30, 0.00}}, {"ft_full", {0.50, 0.00}},
      {"ft_emulator", {0.44, 0.02}}, {"plugin", {0.48, 0.00}}};
  std::vector<RunData> runs;
  for (std::int64_t seed : {1, 2}) {
    std::vector<results::EvalRow> eval;
    for (const auto& [s, v] : settings) {
      for (const std::string& task : tasks) eval.push_back(ev(s, task, "acc", v.first + (seed == 2 ? v.second : 0.0)));
    }
    runs.push_back(make_run("g/s" + std::to_string(seed) + ".h5", seed, "OPT-1.3B CRaSh", paper_table, eval));
  }
  return runs;
}

TEST(AnalysisPrivacy, AverageDifferencesAndGradOTsPublishedRow) {
  const PaperNumbers paper = PaperNumbers::load(ot::test::repo_root() + "/analysis/paper_numbers.csv");
  const Analysis a = analyze(eight_tasks("gradot:crash"), "acc", &paper);
  ASSERT_EQ(a.groups.size(), 1u);
  const GroupTable& t = a.groups[0];
  ASSERT_TRUE(t.has_average);
  // Privacy gap: seed 1 0.48 - 0.44 = 0.04, seed 2 0.48 - 0.46 = 0.02: mean 0.03, sem 0.01.
  const auto& gap = find_difference(t, "privacy_gap").average;
  ASSERT_TRUE(gap.has_value());
  EXPECT_NEAR(gap->mean, 0.03, 1e-12);
  EXPECT_NEAR(gap->sem, 0.01, 1e-12);
  // Emulator ZS lost: 0.10 and 0.12: mean 0.11, sem 0.01. FT lost: 0.06 and 0.04: 0.05, 0.01.
  const auto& zs = find_difference(t, "zs_emulator_gap").average;
  ASSERT_TRUE(zs.has_value());
  EXPECT_NEAR(zs->mean, 0.11, 1e-12);
  EXPECT_NEAR(zs->sem, 0.01, 1e-12);
  const auto& ft = find_difference(t, "ft_emulator_gap").average;
  ASSERT_TRUE(ft.has_value());
  EXPECT_NEAR(ft->mean, 0.05, 1e-12);
  EXPECT_NEAR(ft->sem, 0.01, 1e-12);

  // GradOT's CRaSh row (PAPER.md 4): Plug-in 48.4, Emu FT -> Plug-in 4.8, Full FT 49.9; only
  // averages, no task cells.
  ASSERT_TRUE(t.paper.has_value());
  EXPECT_TRUE(t.paper->cells.empty());
  EXPECT_NEAR(t.paper->average.at("plugin"), 0.484, 1e-12);
  EXPECT_NEAR(t.paper->average.at("ft_full"), 0.499, 1e-12);
  EXPECT_EQ(t.paper->average.count("ft_emulator"), 0u) << "not published: not derived either";
  EXPECT_NEAR(t.paper->average_differences.at("privacy_gap"), 0.048, 1e-12);
  for (const DifferenceKind& kind : difference_kinds()) {
    if (kind.name == "privacy_gap") {
      EXPECT_NEAR(*paper_average_difference(*t.paper, kind), 0.048, 1e-12);
    } else {
      EXPECT_FALSE(paper_average_difference(*t.paper, kind).has_value()) << kind.name;
    }
  }
  std::map<std::string, std::optional<double>> paper_of;
  for (const LongRow& r : t.long_rows) {
    if (r.task == "average_8") paper_of[r.setting] = r.paper;
  }
  EXPECT_NEAR(paper_of.at("plugin").value(), 0.484, 1e-12);
  EXPECT_NEAR(paper_of.at("privacy_gap").value(), 0.048, 1e-12);
  EXPECT_FALSE(paper_of.at("ft_emulator").has_value());

  RunCollection runs;
  runs.root = "/results";
  const std::string md = render_markdown(a, runs);
  EXPECT_NE(md.find("Published (PAPER.md 4, GradOT's OPT-1.3B table, row crash (8-task averages)):"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| OT Plug-in | – | – | – | – | – | – | – | – | 48.4 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| FT | – | – | – | – | – | – | – | – | 49.9 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Privacy gap (Plug-in minus OT Emulator) | – | – | – | – | – | – | – | – | +4.8 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| Privacy gap (Plug-in minus OT Emulator) | +3.0 ± 1.0 |"), std::string::npos)
      << "ours, per task: seed 1 +4, seed 2 +2; OBQA is the first column\n"
      << md;
}

TEST(AnalysisPrivacy, GradOTRowsAreTypedFromThePaper) {
  const PaperNumbers p = PaperNumbers::load(ot::test::repo_root() + "/analysis/paper_numbers.csv");
  // PAPER.md 4's table: Plug-in avg and Emu FT -> Plug-in per row; GradOT's Emulator ZS 27.3.
  const std::map<std::string, std::pair<double, double>> rows = {
      {"ot", {49.0, 2.4}}, {"scaleot", {49.9, 3.7}}, {"ot-uniform", {46.5, 3.3}}, {"crash", {48.4, 4.8}},
      {"gradot", {49.8, 4.8}}};
  for (const auto& [row, values] : rows) {
    std::map<std::string, double> got;
    for (const PaperNumber& n : p.select({"gradot", row})) {
      EXPECT_EQ(n.task, "average_8") << row;
      EXPECT_EQ(n.metric, "acc") << row;
      got[n.setting] = n.value;
    }
    EXPECT_EQ(got.at("plugin"), values.first) << row;
    EXPECT_EQ(got.at("privacy_gap"), values.second) << row;
  }
  std::map<std::string, double> full;
  for (const PaperNumber& n : p.select({"gradot", "full-ft"})) full[n.setting] = n.value;
  EXPECT_EQ(full, (std::map<std::string, double>{{"ft_full", 49.9}}));
  double zs = 0;
  for (const PaperNumber& n : p.select({"gradot", "gradot"}))
    if (n.setting == "zs_emulator") zs = n.value;
  EXPECT_EQ(zs, 27.3);
}

TEST(AnalysisPrivacy, SummaryCarriesDifferencesChecksPaperAndCka) {
  std::vector<RunData> runs = eight_tasks("table1:opt-1.3b");
  runs[0].cka = {{"blocks", {2, 3}}, {"matrix", {{1.0, 0.9}, {0.9, 1.0}}}, {"kept", {3}}};
  const PaperNumbers paper = PaperNumbers::load(ot::test::repo_root() + "/analysis/paper_numbers.csv");
  const Analysis a = analyze(runs, "acc", &paper);
  RunCollection collection;
  collection.root = "/results";
  collection.runs = runs;
  const nlohmann::json s = figure_summary(a, collection);
  ASSERT_EQ(s["groups"].size(), 1u);
  const nlohmann::json& g = s["groups"][0];
  EXPECT_EQ(g["has_average"], true);
  EXPECT_NEAR(g["average"]["plugin"]["mean"].get<double>(), 48.0, 1e-9) << "in %";
  EXPECT_NEAR(g["average"]["plugin"]["sem"].get<double>(), 0.0, 1e-9);
  ASSERT_EQ(g["differences"].size(), 3u);
  EXPECT_EQ(g["differences"][0]["name"], "privacy_gap");
  EXPECT_EQ(g["differences"][0]["better"], "plugin");
  EXPECT_EQ(g["differences"][0]["worse"], "ft_emulator");
  EXPECT_NEAR(g["differences"][0]["average"]["mean"].get<double>(), 3.0, 1e-9);
  EXPECT_NEAR(g["differences"][0]["average"]["sem"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(g["differences"][0]["cells"]["piqa"]["mean"].get<double>(), 3.0, 1e-9);
  ASSERT_EQ(g["checks"].size(), 3u);
  EXPECT_EQ(g["checks"][0]["name"], "Emulator ZS below Full ZS");
  EXPECT_NEAR(g["checks"][0]["margins"]["piqa"]["margin"].get<double>(), 11.0, 1e-9);
  EXPECT_EQ(g["checks"][0]["margins"]["piqa"]["runs_holding"], 2);
  EXPECT_NEAR(g["checks"][0]["average_margin"].get<double>(), 11.0, 1e-9);
  // Table 1's OPT-1.3B numbers: cells in %, the averages of PAPER.md.
  EXPECT_EQ(g["paper"]["ref"], "table1:opt-1.3b");
  EXPECT_NEAR(g["paper"]["average"]["plugin"].get<double>(), 49.0, 0.05);
  EXPECT_NEAR(g["paper"]["average_differences"]["privacy_gap"].get<double>(), 2.4, 0.05);
  bool obqa = false;
  for (const auto& c : g["paper"]["cells"]) {
    if (c["setting"] == "plugin" && c["task"] == "openbookqa") {
      obqa = true;
      EXPECT_NEAR(c["value"].get<double>(), 29.0, 1e-9);
    }
  }
  EXPECT_TRUE(obqa);
  ASSERT_EQ(s["runs"].size(), 2u);
  EXPECT_EQ(s["runs"][0]["cka"]["kept"], nlohmann::json({3}));
  EXPECT_TRUE(s["runs"][1]["cka"].is_null());
}

}  // namespace
}  // namespace ot::analysis
