// Experiment TOML: resolution (extends, ${VAR}, --set, defaults), validation messages with
// file:line:col and suggestions, sweep expansion and run-id stability.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "experiment/config.h"
#include "experiment/schema.h"
#include "experiment/sweep.h"
#include "test_support.h"
#include "util/fs.h"

namespace ot::experiment {
namespace {

using ot::test::expect_error;
using ot::test::TempDir;
using ot::test::write_file;

const char* const kMinimal = ot::test::kMinimalExperiment;

std::string write_toml(const TempDir& d, const std::string& name, const std::string& text) {
  const std::string p = d.path() + "/" + name;
  write_file(p, text);
  return p;
}

TEST(ExperimentConfig, DefaultsAreFilledAndTyped) {
  TempDir d;
  Config c = load_config(write_toml(d, "a.toml", kMinimal));
  EXPECT_EQ(c.str("experiment.recipe"), "offsite");
  EXPECT_EQ(c.integer("experiment.seed"), 0);
  EXPECT_EQ(c.str("emulator.strategy"), "uniform");
  EXPECT_EQ(c.integers("emulator.adapter"), (std::vector<int64_t>{2, 2}));
  EXPECT_DOUBLE_EQ(c.number("distill.kd_weight"), 30.0);
  EXPECT_DOUBLE_EQ(c.number("full_finetune.lr"), 2e-5);
  EXPECT_EQ(c.strings("eval.settings").size(), 5u);
  EXPECT_EQ(c.str("finetune.schedule"), "linear");
}

TEST(ExperimentConfig, ExtendsMergesKeyByKeyAndSetOverrides) {
  TempDir d;
  write_toml(d, "base.toml", std::string(kMinimal) + "\n[emulator]\nlayers = 8\nadapter = [2, 2]\n");
  const std::string child = write_toml(d, "child.toml", R"(
extends = "base.toml"
[emulator]
layers = 4
[finetune]
lr = 3
)");
  Config c = load_config(child, {"finetune.epochs=7", "experiment.label=hello world"});
  EXPECT_EQ(c.integer("emulator.layers"), 4);
  EXPECT_EQ(c.integers("emulator.adapter"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(c.str("finetune.data"), "train");
  EXPECT_DOUBLE_EQ(c.number("finetune.lr"), 3.0);  // an integer where a float is expected is accepted
  EXPECT_TRUE(get_dotted(c.table, "finetune.lr")->is_floating_point());
  EXPECT_EQ(c.integer("finetune.epochs"), 7);
  EXPECT_EQ(c.str("experiment.label"), "hello world");
}

TEST(ExperimentConfig, VariablesExpandWithDefaults) {
  TempDir d;
  setenv("OT_TEST_MODELS", "/models", 1);
  unsetenv("OT_TEST_UNSET");
  std::string text = kMinimal;
  text.replace(text.find("path = \"m\""), 10, "path = \"${OT_TEST_MODELS}/opt\"");
  text += "\n[tokenizer]\npath = \"${OT_TEST_UNSET:-/tok}\"\n";
  Config c = load_config(write_toml(d, "a.toml", text));
  EXPECT_EQ(c.str("model.path"), "/models/opt");
  EXPECT_EQ(c.str("tokenizer.path"), "/tok");
  std::string bad = kMinimal;
  bad.replace(bad.find("path = \"m\""), 10, "path = \"${OT_TEST_UNSET}/x\"");
  const std::string p = write_toml(d, "b.toml", bad);
  expect_error([&] { load_config(p); }, {"OT_TEST_UNSET is not set", "model.path", "b.toml:10:1"});
}

TEST(ExperimentConfig, UnknownKeyNamesLineColumnAndSuggests) {
  TempDir d;
  const std::string p = write_toml(d, "a.toml", std::string(kMinimal) + "\n[emulator]\nlayres = 8\n");
  expect_error([&] { load_config(p); }, {"a.toml:16:1", "unknown key 'emulator.layres'", "did you mean 'layers'"});
  const std::string q = write_toml(d, "b.toml", std::string(kMinimal) + "\n[emulater]\nlayers = 8\n");
  expect_error([&] { load_config(q); }, {"b.toml:15:2", "unknown section or key 'emulater'", "did you mean 'emulator'"});
}

TEST(ExperimentConfig, WrongTypesAndImpossibleValues) {
  TempDir d;
  auto with = [&](const std::string& name, const std::string& extra) {
    return write_toml(d, name, std::string(kMinimal) + extra);
  };
  expect_error([&] { load_config(with("a.toml", "\n[emulator]\nlayers = \"eight\"\n")); },
               {"a.toml:16:1", "emulator.layers: expected an integer, got a string"});
  expect_error([&] { load_config(with("b.toml", "\n[emulator]\nprune = 1.5\n")); },
               {"b.toml:16:1", "emulator.prune", "out of range"});
  expect_error([&] { load_config(with("c.toml", "\n[distill]\nschedule = \"cosin\"\n")); },
               {"c.toml:16:1", "'cosin' is not allowed", "did you mean 'cosine'"});
  expect_error([&] { load_config(with("d.toml", "\n[eval]\ndata = [\"trian\"]\n")); },
               {"d.toml:16:1", "no data source 'trian'", "did you mean 'train'"});
  expect_error([&] { load_config(with("e.toml", "\n[emulator]\nadapter = [2]\n")); }, {"expected [L, R]"});
  expect_error([&] { load_config(d.path() + "/missing.toml"); }, {"missing.toml: no such experiment file"});
  const std::string broken = write_toml(d, "f.toml", "[experiment\nname = 1\n");
  expect_error([&] { load_config(broken); }, {"f.toml:1:", "malformed TOML"});
  expect_error([&] { load_config(write_toml(d, "g.toml", kMinimal), {"finetune.lr"}); }, {"--set 'finetune.lr'", "KEY=VALUE"});
  expect_error([&] { load_config(write_toml(d, "h.toml", kMinimal), {"finetune.lr=fast"}); },
               {"--set finetune.lr=fast", "finetune.lr: expected a number, got a string"});
  expect_error([&] { load_config(with("r1.toml", "\n[emulator]\nreplace_layers = \"1.5\"\n")); },
               {"r1.toml:16:1", "emulator.replace_layers: expected a ratio in (0, 1)"});
  expect_error([&] { load_config(with("r2.toml", "\n[emulator]\nreplace_layers = \"0.5\"\n")); },
               {"r2.toml:16:1", "scores the blocks on emulator.calibration_data"});
  expect_error([&] { load_config(with("r3.toml", "\n[emulator]\nreplace_layers = \"3,5\"\n")); },
               {"r3.toml:16:1", "harmonizers are trained by distillation; set distill.data"});
  expect_error([&] { load_config(with("r4.toml", "\n[emulator]\nreplace_layers = \"5,3\"\n")); },
               {"r4.toml:16:1", "strictly increasing"});
  const std::string cyc = write_toml(d, "cyc.toml", "extends = \"cyc.toml\"\n");
  expect_error([&] { load_config(cyc); }, {"cycle"});
}

TEST(ExperimentConfig, ResolvedTextRoundTripsToTheSameRunId) {
  TempDir d;
  Config c = load_config(write_toml(d, "a.toml", kMinimal));
  Config back = config_from_text(c.to_toml(), "stored");
  EXPECT_EQ(back.to_toml(), c.to_toml());
  EXPECT_EQ(run_id_of(back), run_id_of(c));
}

TEST(Sweep, GridZipAndSeedsExpandInAFixedOrderWithStableIds) {
  TempDir d;
  const std::string p = write_toml(d, "s.toml", std::string(kMinimal) + R"(
[sweep]
seeds = [0, 1]
[sweep.grid]
"emulator.layers" = [2, 4, 6]
[[sweep.zip]]
"finetune.lr" = [1e-4, 2e-4]
"finetune.batch_size" = [4, 8]
)");
  std::vector<PlannedRun> runs = plan_runs(load_config(p));
  ASSERT_EQ(runs.size(), 3u * 2u * 2u);
  std::set<std::string> ids, groups;
  for (const PlannedRun& r : runs) {
    ids.insert(r.run_id);
    groups.insert(group_id_of(r.config));
    EXPECT_FALSE(r.config.has("sweep.grid"));  // a run is one point: no sweep left but the defaults
    EXPECT_TRUE(r.config.strings("eval.data").empty());
    EXPECT_TRUE(r.config.integers("sweep.seeds").empty());
    EXPECT_EQ(r.result_path, "results/t/" + r.run_id + ".h5");
  }
  EXPECT_EQ(ids.size(), runs.size());
  EXPECT_EQ(groups.size(), runs.size() / 2);  // seeds share a group
  // grid first, then zip groups, then seeds (last fastest); keys of a group in sorted order
  EXPECT_EQ(runs[0].params, (std::vector<std::pair<std::string, std::string>>{
                                {"emulator.layers", "2"}, {"finetune.batch_size", "4"}, {"finetune.lr", "0.0001"},
                                {"experiment.seed", "0"}}));
  EXPECT_EQ(runs[1].config.integer("experiment.seed"), 1);
  EXPECT_EQ(runs[2].config.integer("finetune.batch_size"), 8);
  EXPECT_EQ(runs[11].config.integer("emulator.layers"), 6);
  EXPECT_EQ(params_json(runs[0].params),
            R"({"emulator.layers":2,"finetune.batch_size":4,"finetune.lr":0.0001,"experiment.seed":0})");

  // The id of a run depends on its configuration only: not on the sweep around it, and not
  // on runtime settings or labels.
  Config base = load_config(write_toml(d, "two.toml", kMinimal),
                            {"emulator.layers=4", "finetune.lr=2e-4", "finetune.batch_size=8", "experiment.seed=1",
                             "runtime.threads=2", "experiment.label=another"});
  bool found = false;
  for (const PlannedRun& r : runs) found = found || r.run_id == run_id_of(base);
  EXPECT_TRUE(found);
}

TEST(Sweep, BadSweepsAreClearErrors) {
  TempDir d;
  auto sweep = [&](const std::string& name, const std::string& s) {
    return load_config(write_toml(d, name, std::string(kMinimal) + s));
  };
  expect_error([&] { plan_runs(sweep("a.toml", "[sweep.grid]\n\"emulator.layers\" = []\n")); }, {"zero runs"});
  expect_error([&] { plan_runs(sweep("b.toml", "[[sweep.zip]]\n\"finetune.lr\" = [1e-4, 2e-4]\n\"finetune.epochs\" = [1]\n")); },
               {"b.toml:14:", "finetune.lr has 2 values", "zip group have 1"});
  expect_error([&] { plan_runs(sweep("c.toml", "[sweep.grid]\n\"emulator.layres\" = [2, 4]\n")); },
               {"unknown key 'emulator.layres'", "did you mean 'layers'", "sweep value"});
  expect_error([&] { plan_runs(sweep("d.toml", "[sweep.grid]\n\"emulator.layers\" = [2, 2]\n")); }, {"same configuration"});
  expect_error([&] { plan_runs(sweep("e.toml", "[sweep]\nseeds = [0]\n[sweep.grid]\n\"experiment.seed\" = [1, 2]\n")); },
               {"swept twice"});
  expect_error([&] { sweep("f.toml", "[sweep]\ngrdi = 1\n"); }, {"unknown key 'sweep.grdi'", "did you mean 'grid'"});
}

TEST(ExperimentSchema, ReferenceListsEverySection) {
  const std::string ref = schema_reference();
  for (const char* s : {"[experiment]", "[runtime]", "[data.<name>]", "[tokenizer]", "[model]", "[pretrain]",
                        "[emulator]", "[distill]", "[finetune]", "[full_finetune]", "[eval]", "[sweep]"})
    EXPECT_NE(ref.find(s), std::string::npos) << s;
  EXPECT_EQ(did_you_mean("lyaers", {"layers", "adapter"}), "layers");
  EXPECT_EQ(did_you_mean("zzzzzz", {"layers", "adapter"}), "");
}

}  // namespace
}  // namespace ot::experiment

// experiments/SCHEMA.md is what `ot schema` prints: regenerate it (`ot schema >
// experiments/SCHEMA.md`) whenever a key is added or documented differently.
TEST(ExperimentSchema, TheCommittedReferenceIsCurrent) {
  EXPECT_EQ(ot::read_text_file(ot::test::repo_root() + "/experiments/SCHEMA.md"),
            "# Experiment TOML keys\n\nGenerated by `ot schema`.\n\n" + ot::experiment::schema_reference())
      << "experiments/SCHEMA.md is stale: run `build/ot schema > experiments/SCHEMA.md`";
}

namespace {

// Every experiment file the project ships (not the bases they extend) resolves, validates and
// plans its sweep: a key renamed in the schema cannot leave a paper table's file stale.
TEST(ExperimentFiles, EveryShippedFilePlans) {
  const std::string root = ot::test::repo_root() + "/experiments";
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    const std::string path = e.path().string();
    if (e.path().extension() != ".toml" || path.find("/base/") != std::string::npos) continue;
    ++files;
    const auto r = ot::test::run_cli("sweep plan " + path);
    EXPECT_EQ(r.exit_code, 0) << path << "\n" << r.err;
    EXPECT_NE(r.out.find("| 0 |"), std::string::npos) << path << ": no run planned";
  }
  EXPECT_GE(files, 25);
}

}  // namespace
