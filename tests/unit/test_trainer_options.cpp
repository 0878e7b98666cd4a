// tests/unit/test_trainer_options.cpp: the table of trainer options (train/trainer_options.h)
// and what is generated from it. Every user-settable TrainerOptions member is reachable
// through exactly one entry; flags and TOML keys follow one naming rule; the defaults
// without a stage are TrainerOptions' own (and so the flags'); the experiment schema fills
// each stage's defaults and bounds from the table and trainer_options_from reads every key
// back; `ot finetune --help` lists every flag with its help.
#include <gtest/gtest.h>

#include <toml++/toml.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "experiment/config.h"
#include "experiment/schema.h"
#include "test_support.h"
#include "train/trainer_options.h"

namespace ot {
namespace {

using Type = TrainerOptionSpec::Type;

const std::vector<std::string> kStages = {"pretrain", "distill", "finetune", "full_finetune"};

// The value of a TOML default ("1e-4", "\"cosine\"", "3") as text comparable across types.
std::string toml_value_text(const std::string& toml_text, Type type) {
  toml::table t = toml::parse("v = " + toml_text);
  std::ostringstream os;
  if (type == Type::kString) os << *t["v"].value<std::string>();
  else if (type == Type::kFloat) os << *t["v"].value<double>();
  else os << *t["v"].value<int64_t>();
  return os.str();
}

// The member's value in `o` as the same text.
std::string member_text(const TrainerOptionSpec& spec, const TrainerOptions& o) {
  std::ostringstream os;
  std::visit([&](auto member) { os << o.*member; }, spec.member);
  return os.str();
}

// Writes a value unlike the default into the member, distinct per entry (`i`).
void set_distinct(const TrainerOptionSpec& spec, TrainerOptions& o, int i) {
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(o.*member)>;
        if constexpr (std::is_same_v<T, std::string>) o.*member = "value-" + std::to_string(i);
        else o.*member = static_cast<T>(1000 + i);
      },
      spec.member);
}

TEST(TrainerOptionTable, EveryUserSettableMemberIsReachedByExactlyOneEntry) {
  const auto& table = trainer_option_table();
  TrainerOptions o;
  for (size_t i = 0; i < table.size(); ++i) set_distinct(table[i], o, int(i));
  // Each entry reads back what it wrote: no two entries share a member.
  TrainerOptions expected;
  for (size_t i = 0; i < table.size(); ++i) {
    set_distinct(table[i], expected, int(i));
    EXPECT_EQ(member_text(table[i], o), member_text(table[i], expected)) << table[i].cli_flag;
  }
  const TrainerOptions d;
  EXPECT_NE(o.lr, d.lr);
  EXPECT_NE(o.weight_decay, d.weight_decay);
  EXPECT_NE(o.schedule, d.schedule);
  EXPECT_NE(o.warmup_steps, d.warmup_steps);
  EXPECT_NE(o.epochs, d.epochs);
  EXPECT_NE(o.max_steps, d.max_steps);
  EXPECT_NE(o.batch_size, d.batch_size);
  EXPECT_NE(o.grad_accum, d.grad_accum);
  EXPECT_NE(o.global_batch_size, d.global_batch_size);
  EXPECT_NE(o.clip_norm, d.clip_norm);
  EXPECT_NE(o.head_lr_scale, d.head_lr_scale);
  EXPECT_NE(o.eval_every, d.eval_every);
  EXPECT_NE(o.seed, d.seed);
  EXPECT_NE(o.state_path, d.state_path);
  EXPECT_NE(o.save_every, d.save_every);
  // Set by the jobs or from the runtime settings, not by the table.
  EXPECT_EQ(o.best_metric, d.best_metric);
  EXPECT_EQ(o.label, d.label);
  EXPECT_EQ(o.precision, d.precision);
  EXPECT_EQ(o.checkpoint_activations, d.checkpoint_activations);
  EXPECT_EQ(table.size(), 15u) << "a new option: add it to the checks above";
}

TEST(TrainerOptions, GlobalBatchSetsTheMicroBatchOfAnyTeam) {
  TrainerOptions o;
  o.batch_size = 8;
  EXPECT_EQ(micro_batch_size(o, 1, "pretrain"), 8);  // unset: batch_size, per rank
  EXPECT_EQ(micro_batch_size(o, 2, "pretrain"), 8);
  o.global_batch_size = 8;
  EXPECT_EQ(micro_batch_size(o, 1, "pretrain"), 8);
  EXPECT_EQ(micro_batch_size(o, 2, "pretrain"), 4);
  EXPECT_EQ(micro_batch_size(o, 8, "pretrain"), 1);
  o.grad_accum = 2;
  EXPECT_EQ(micro_batch_size(o, 2, "pretrain"), 2);
  try {
    micro_batch_size(o, 3, "pretrain");
    ADD_FAILURE() << "8 examples split over 3 ranks x 2 micro-batches";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("pretrain"), std::string::npos) << m;
    EXPECT_NE(m.find("global_batch_size 8"), std::string::npos) << m;
    EXPECT_NE(m.find("multiple of 6"), std::string::npos) << m;
  }
}

TEST(TrainerOptionTable, FlagsAndKeysFollowOneNamingRule) {
  std::set<std::string> keys, flags;
  for (const TrainerOptionSpec& o : trainer_option_table()) {
    ASSERT_FALSE(o.toml_key.empty() && o.cli_flag.empty()) << "an option nobody can set";
    EXPECT_FALSE(o.doc.empty()) << o.toml_key << o.cli_flag;
    if (!o.toml_key.empty()) {
      EXPECT_TRUE(keys.insert(o.toml_key).second) << o.toml_key;
      EXPECT_EQ(find_trainer_option(o.toml_key), &o);
    }
    if (!o.cli_flag.empty()) {
      EXPECT_TRUE(flags.insert(o.cli_flag).second) << o.cli_flag;
      EXPECT_EQ(find_trainer_option(o.cli_flag), &o);
    }
    if (!o.toml_key.empty() && !o.cli_flag.empty()) {
      std::string flag = "--" + o.toml_key;
      for (char& c : flag)
        if (c == '_') c = '-';
      EXPECT_EQ(o.cli_flag, flag);
    }
    if (!o.choices.empty()) {
      EXPECT_EQ(o.type(), Type::kString) << o.toml_key;
    }
    if (o.min) {
      EXPECT_NE(o.type(), Type::kString) << o.toml_key;
    }
    EXPECT_EQ(o.toml_key.empty(), o.default_toml.empty()) << "a TOML key needs a default: " << o.toml_key << o.cli_flag;
    for (const auto& [stage, value] : o.stage_defaults) {
      EXPECT_NE(std::find(kStages.begin(), kStages.end(), stage), kStages.end()) << stage;
      EXPECT_NE(value, o.default_toml) << o.toml_key << " in " << stage << ": the same as without a stage";
    }
  }
  EXPECT_EQ(find_trainer_option("--no-such-flag"), nullptr);
  EXPECT_EQ(find_trainer_option(""), nullptr);
}

// The flags' defaults are TrainerOptions' members; a stage without its own default in TOML
// (finetune) gets the same values.
TEST(TrainerOptionTable, DefaultsWithoutAStageAreTrainerOptionsDefaults) {
  const TrainerOptions d;
  for (const TrainerOptionSpec& o : trainer_option_table()) {
    if (o.default_toml.empty()) continue;
    EXPECT_EQ(toml_value_text(o.default_toml, o.type()), member_text(o, d)) << o.toml_key;
    EXPECT_EQ(o.default_for("finetune"), o.default_toml) << o.toml_key;
  }
  const TrainerOptionSpec* lr = find_trainer_option("lr");
  ASSERT_NE(lr, nullptr);
  EXPECT_EQ(lr->default_for("pretrain"), "1e-3");
  EXPECT_EQ(lr->default_for("full_finetune"), "2e-5");
  EXPECT_EQ(lr->default_for("distill"), "1e-4");
  EXPECT_EQ(find_trainer_option("schedule")->default_for("distill"), "\"cosine\"");
  EXPECT_EQ(find_trainer_option("--max-steps")->cli_help(), "optimizer steps (overrides --epochs)");
  EXPECT_EQ(find_trainer_option("--epochs")->cli_help(), "passes over the data");
}

const char* const kMinimal = ot::test::kMinimalExperiment;

// Every stage's section holds every trainer key with the stage's default, and
// trainer_options_from reads them back into the members.
TEST(TrainerOptionSchema, EveryStageGetsTheTableKeysAndDefaults) {
  test::TempDir d;
  test::write_file(d.file("a.toml"), kMinimal);
  const experiment::Config c = experiment::load_config(d.file("a.toml"));
  const std::string reference = experiment::schema_reference();
  for (const std::string& stage : kStages) {
    SCOPED_TRACE(stage);
    EXPECT_NE(reference.find("## [" + stage + "]"), std::string::npos);
    const TrainerOptions read = experiment::trainer_options_from(c, stage);
    for (const TrainerOptionSpec& o : trainer_option_table()) {
      if (o.toml_key.empty()) continue;
      const std::string key = stage + "." + o.toml_key;
      ASSERT_TRUE(c.has(key)) << key;
      EXPECT_EQ(member_text(o, read), toml_value_text(o.default_for(stage), o.type())) << key;
      const std::string type = o.type() == Type::kFloat ? "a number" : o.type() == Type::kInt ? "an integer" : "a string";
      EXPECT_NE(reference.find("| `" + o.toml_key + "` | " + type + " | `" + o.default_for(stage) + "` | " + o.doc),
                std::string::npos)
          << key;
    }
  }
}

TEST(TrainerOptionSchema, ReadsEveryKeyOfAStage) {
  test::TempDir d;
  test::write_file(d.file("a.toml"), kMinimal);
  std::vector<std::string> sets;
  const auto& table = trainer_option_table();
  TrainerOptions expected;
  for (size_t i = 0; i < table.size(); ++i) {
    const TrainerOptionSpec& o = table[i];
    if (o.toml_key.empty()) continue;
    std::string value = o.type() == Type::kString ? (o.choices.empty() ? "x" : o.choices.front())
                                                  : std::to_string(int64_t(o.min.value_or(0.0)) + 7 + int64_t(i));
    sets.push_back("distill." + o.toml_key + "=" + value);
    if (o.type() == Type::kString) o.in<std::string>(expected) = value;
    else if (o.type() == Type::kFloat) o.in<double>(expected) = std::stod(value);
    else o.in<int64_t>(expected) = std::stoll(value);
  }
  const experiment::Config c = experiment::load_config(d.file("a.toml"), sets);
  const TrainerOptions read = experiment::trainer_options_from(c, "distill");
  for (const TrainerOptionSpec& o : table)
    EXPECT_EQ(member_text(o, read), member_text(o, expected)) << o.cli_flag;
}

// The bounds and allowed values of the schema are the table's.
TEST(TrainerOptionSchema, BoundsAndChoicesComeFromTheTable) {
  test::TempDir d;
  test::write_file(d.file("a.toml"), kMinimal);
  for (const TrainerOptionSpec& o : trainer_option_table()) {
    if (o.toml_key.empty()) continue;
    const std::string key = "full_finetune." + o.toml_key;
    if (o.min) {
      std::ostringstream want;
      want << key << ": " << *o.min - 1 << " is out of range (expected >= " << *o.min << ")";
      test::expect_error([&] { experiment::load_config(d.file("a.toml"), {key + "=" + std::to_string(int(*o.min) - 1)}); },
                         {want.str()});
    }
    if (!o.choices.empty())
      test::expect_error([&] { experiment::load_config(d.file("a.toml"), {key + "=\"nope\""}); },
                         {key + ": 'nope' is not allowed", "expected one of " + o.choices.front()});
  }
}

// `ot finetune` and `ot emulator` take every flag of the table with its help text; the
// bounds are checked with the plain range message.
TEST(TrainerOptionFlags, TrainingCommandsListEveryFlag) {
  for (const char* command : {"finetune", "emulator"}) {
    SCOPED_TRACE(command);
    const test::CliResult help = test::run_cli(std::string(command) + " --help");
    ASSERT_EQ(help.exit_code, 0) << help.err;
    for (const TrainerOptionSpec& o : trainer_option_table()) {
      if (o.cli_flag.empty()) continue;
      EXPECT_NE(help.out.find(o.cli_flag + " "), std::string::npos) << o.cli_flag;
      EXPECT_NE(help.out.find(o.cli_help()), std::string::npos) << o.cli_flag;
    }
  }
  const TrainerOptionSpec* epochs = find_trainer_option("--epochs");
  ASSERT_NE(epochs, nullptr);
  const test::CliResult bad = test::run_cli("finetune --model m --out o --corpus c --epochs 0");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--epochs: expected a number >= 1, got 0"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ot
