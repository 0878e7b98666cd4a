// cli/common.cpp: see common.h.
#include "cli/common.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <variant>

#include "train/schedule.h"
#include "train/trainer_options.h"
#include "util/device.h"
#include "util/host_threads.h"
#include "util/signals.h"

namespace ot::cli {

namespace {
CLI::Validator number_check(double min, std::optional<double> max) {
  std::ostringstream want;
  want << "a number " << (max ? "from " : ">= ") << min;
  if (max) want << " to " << *max;
  const std::string expected = want.str();
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        double x = 0.0;
        size_t used = 0;
        try {
          x = std::stod(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || !std::isfinite(x) || x < min || (max && x > *max))
          return "expected " + expected + ", got " + value;
        return "";
      },
      expected);
}
}  // namespace

CLI::Validator at_least(double min) { return number_check(min, std::nullopt); }
CLI::Validator in_range(double min, double max) { return number_check(min, max); }

void add_runtime_options(CLI::App* cmd, RuntimeOptions& o) {
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "weight and compute dtype: fp32, bf16 or fp16")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: LibTorch default)")->check(at_least(0));
}

void add_precision_option(CLI::App* cmd, RuntimeOptions& o) {
  cmd->add_option("--precision", o.precision,
                  "mixed precision with fp32 weights: fp32, bf16 (autocast) or fp16 (autocast + loss scaling, CUDA)")
      ->capture_default_str();
}

void add_checkpointing_option(CLI::App* cmd, RuntimeOptions& o) {
  cmd->add_flag("--checkpoint-activations", o.checkpoint_activations,
                "recompute each block's activations in backward instead of keeping them (less memory)");
}

void add_trainer_options(CLI::App* cmd, TrainerOptions& t) {
  for (const TrainerOptionSpec& spec : trainer_option_table()) {
    if (spec.cli_flag.empty()) continue;
    CLI::Option* opt = std::visit([&](auto member) { return cmd->add_option(spec.cli_flag, t.*member, spec.cli_help()); },
                                  spec.member);
    // A flag without a default (a path) shows none.
    if (spec.type() != TrainerOptionSpec::Type::kString || !spec.in<std::string>(t).empty()) opt->capture_default_str();
    if (spec.min) opt->check(at_least(*spec.min));
  }
}

LoadOptions apply_runtime_options(const RuntimeOptions& o) {
  LoadOptions l;
  l.device = parse_device(o.device);
  l.dtype = parse_dtype(o.dtype);
  check_precision(parse_precision(o.precision), l.device, l.dtype);
  set_host_threads(o.threads);
  return l;
}

void apply_training_options(const RuntimeOptions& o, TrainerOptions& t) {
  t.precision = parse_precision(o.precision);
  t.checkpoint_activations = o.checkpoint_activations;
}

void add_training_command_options(CLI::App* cmd, TrainerOptions& t, RuntimeOptions& o) {
  add_trainer_options(cmd, t);
  add_runtime_options(cmd, o);
  add_precision_option(cmd, o);
  add_checkpointing_option(cmd, o);
}

LoadOptions apply_training_command_options(const RuntimeOptions& o, TrainerOptions& t) {
  const LoadOptions load = apply_runtime_options(o);
  apply_training_options(o, t);
  check_schedule_kind(t.schedule, "--schedule");
  return load;
}

ImageDataSpec parse_image_spec(const std::string& flag, const std::string& arg, const std::string& split,
                               int64_t max_examples) {
  const size_t eq = arg.find('=');
  OT_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), flag, " '", arg,
             "': expected FORMAT=PATH, e.g. cifar10=data/cifar-10-batches-bin (formats: imagefolder, cifar10, "
             "cifar100, idx)");
  ImageDataSpec spec;
  spec.format = arg.substr(0, eq);
  spec.path = arg.substr(eq + 1);
  spec.split = split;
  spec.max_examples = max_examples;
  spec.where = flag;
  return spec;
}

void run_recorded(results::RunRecorder* rec, const std::function<void()>& body) {
  try {
    body();
    if (rec) rec->complete();
  } catch (const Preempted& e) {
    if (rec) rec->fail(e.what());
    std::cerr << "ot: " << e.what() << "\n";
    std::exit(kExitPreempted);
  } catch (const std::exception& e) {
    if (rec) rec->fail(e.what());
    throw;
  }
}

}  // namespace ot::cli
