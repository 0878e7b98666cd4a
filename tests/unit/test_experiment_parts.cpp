// Units of the experiment layer and what it shares with the CLI: the typed spec, the recipe
// registry, the efficiency request handed to a child process, run states and the bundle
// predicate.
#include <gtest/gtest.h>

#include <algorithm>

#include "experiment/config.h"
#include "experiment/recipes/recipe.h"
#include "experiment/schema.h"
#include "experiment/spec.h"
#include "model/config.h"
#include "model/offsite_section.h"
#include "offsite/efficiency.h"
#include "results/run_file.h"
#include "results/run_state.h"
#include "test_support.h"

namespace ot::experiment {
namespace {

using ot::test::expect_error;
using ot::test::TempDir;
using ot::test::write_file;

const char* kExperiment = R"(
[experiment]
name = "t"
recipe = "offsite"
seed = 7

[data.zeta]
path = "z.txt"

[data.alpha]
brown = "corpus"
genres = ["a", "b"]
split = "train"

[model]
path = "m"

[pretrain]
seed = 3
lr = 0.5

[emulator]
adapter = [1, 3]
layers = 2

[finetune]
data = "alpha"
lr = 0.25
block_size = 64
train_head = true

[full_finetune]
enabled = false
)";

Config load(const TempDir& d, const std::string& text) {
  write_file(d.file("e.toml"), text);
  return load_config(d.file("e.toml"));
}

TEST(ExperimentSpec, SectionsAreReadOnceIntoFields) {
  TempDir d;
  const Config c = load(d, kExperiment);
  const ExperimentSpec s = spec_of(c, runtime_spec_of(c));
  EXPECT_EQ(s.recipe, "offsite");
  EXPECT_EQ(s.seed, 7u);
  ASSERT_EQ(s.data.size(), 2u);  // in the [data] table's order
  EXPECT_EQ(s.data[0].name, "alpha");
  EXPECT_EQ(s.data[0].selection.genres, "ab");
  EXPECT_EQ(s.data[0].selection.split, BrownSplit::kTrain);
  EXPECT_EQ(s.data_source("zeta").path, "z.txt");
  expect_error([&] { s.data_source("nope"); }, {"data.nope"});
  EXPECT_NE(s.data[0].section_toml.find("genres"), std::string::npos);
  EXPECT_EQ(s.model.path, "m");
  EXPECT_FALSE(s.model.init);
  EXPECT_DOUBLE_EQ(s.pretrain.trainer.lr, 0.5);
  EXPECT_EQ(s.pretrain.trainer.seed, 3u);  // the foundation model's own seed
  EXPECT_EQ(s.emulator.options.bottom, 1);
  EXPECT_EQ(s.emulator.options.top, 3);
  EXPECT_EQ(s.emulator.options.layers, 2);
  EXPECT_TRUE(s.emulator.options.train_head);  // issued for what the data owner trains
  EXPECT_DOUBLE_EQ(s.finetune.trainer.lr, 0.25);
  EXPECT_EQ(s.finetune.trainer.seed, 7u);
  EXPECT_EQ(s.finetune.block_size, 64);
  EXPECT_EQ(s.finetune.data, "alpha");
  EXPECT_FALSE(s.full_finetune.enabled);
  EXPECT_DOUBLE_EQ(s.full_finetune.trainer.lr, 2e-5);
  EXPECT_EQ(s.eval.settings.size(), 5u);
  EXPECT_NE(s.eval.section_toml.find("settings"), std::string::npos);
  const TrainerOptions t = trainer_options_of(c, "distill");
  EXPECT_DOUBLE_EQ(t.lr, 1e-4);
  EXPECT_EQ(t.schedule, "cosine");
  EXPECT_EQ(t.seed, 7u);
}

TEST(ExperimentSpec, BadGenreLetterNamesTheKey) {
  TempDir d;
  std::string text = kExperiment;
  text.replace(text.find("[\"a\", \"b\"]"), 10, "[\"a\", \"!\"]");
  const Config c = load(d, text);
  expect_error([&] { spec_of(c, runtime_spec_of(c)); }, {"data.alpha.genres"});
}

TEST(RecipeRegistry, NamesAreTheSchemasAndUnknownNamesAreErrors) {
  std::vector<std::string> schema = recipes();
  std::sort(schema.begin(), schema.end());
  EXPECT_EQ(recipe_names(), schema);
  for (const std::string& name : schema) EXPECT_NO_THROW(recipe_named(name));
  expect_error([] { recipe_named("ofsite", " at x.toml:3:10"); },
               {"experiment.recipe", "'ofsite'", "offsite", "pretrain", "efficiency", "at x.toml:3:10"});
}

TEST(EfficiencyRequest, JsonRoundTripsAndNamesAMissingKey) {
  EfficiencyRequest r;
  r.method = "ot_lora";
  r.shape = "";
  r.config_path = "/tmp/m/config.json";
  r.bottom = 1;
  r.top = 3;
  r.emulator_layers = 0;
  r.seq_len = 16;
  r.batch = 2;
  r.warmup_steps = 0;
  r.steps = 1;
  r.device = "cuda:1";
  r.precision = "bf16";
  r.threads = 3;
  r.checkpoint_activations = true;
  const EfficiencyRequest back = efficiency_request_from_json(efficiency_request_to_json(r), "req.json");
  EXPECT_EQ(efficiency_request_to_json(back), efficiency_request_to_json(r));
  EXPECT_EQ(back.method, "ot_lora");
  EXPECT_EQ(back.config_path, r.config_path);
  EXPECT_EQ(back.top, 3);
  EXPECT_EQ(back.device, "cuda:1");
  EXPECT_TRUE(back.checkpoint_activations);
  nlohmann::json j = efficiency_request_to_json(r);
  j.erase("steps");
  expect_error([&] { efficiency_request_from_json(j, "req.json"); }, {"req.json", "'steps'"});
  j = efficiency_request_to_json(r);
  j["batch"] = "two";
  expect_error([&] { efficiency_request_from_json(j, "req.json"); }, {"req.json", "'batch'", "wrong type"});
}

TEST(EfficiencyRequest, OptionsResolveTheShapeAndTheDefaultEmulatorDepth) {
  EfficiencyRequest r;
  r.method = "ot";
  r.shape = "opt-1.3b";  // 24 layers: 2-8-2 as the paper
  const EfficiencyOptions o = efficiency_options_of(r);
  EXPECT_EQ(o.config.num_layers, 24);
  EXPECT_EQ(o.emulator_layers, 8);
  r.emulator_layers = 5;
  EXPECT_EQ(efficiency_options_of(r).emulator_layers, 5);
}

TEST(RunState, ReadFromTheResultFile) {
  TempDir d;
  EXPECT_EQ(results::run_state_of(d.file("none.h5")), "pending");
  write_file(d.file("garbage.h5"), "not hdf5");
  EXPECT_EQ(results::run_state_of(d.file("garbage.h5")), "unreadable");
  results::RunInfo info;
  info.run_id = "r";
  info.experiment = "e";
  const std::string path = d.file("e/r.h5");
  {
    results::RunRecorder rec(path, info);
    rec.flush();
    EXPECT_EQ(results::run_state_of(path), "running");
    rec.set_attribute("interrupted", "stopped by a signal");
    rec.flush();
    EXPECT_EQ(results::run_state_of(path), "interrupted");
    rec.complete();
    EXPECT_EQ(results::run_state_of(path), "completed");
  }
  {
    results::RunRecorder rec(d.file("e/f.h5"), info);
    rec.fail("bad data");
    EXPECT_EQ(results::run_state_of(d.file("e/f.h5")), "failed");
  }
}

TEST(OffsiteBundle, IsMarkedByItsOffsiteSection) {
  EXPECT_TRUE(is_offsite_bundle(nlohmann::json{{"model_type", "opt"}, {"offsite", {{"bottom", 2}}}}));
  EXPECT_FALSE(is_offsite_bundle(nlohmann::json{{"model_type", "opt"}}));
  EXPECT_FALSE(is_offsite_bundle(nlohmann::json::array()));
}

}  // namespace
}  // namespace ot::experiment
