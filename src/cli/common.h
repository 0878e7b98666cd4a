// cli/common.h: options several subcommands share (--device, --dtype, --threads, the
// trainer's flags) and the one place they are turned into library settings.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "experiment/jobs.h"
#include "model/load.h"
#include "model/precision.h"
#include "results/run_file.h"
#include "train/trainer.h"

#include <functional>

namespace ot::cli {

struct RuntimeOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";
  int threads = 0;  // 0 = LibTorch's default
  std::string precision = "fp32";       // mixed precision (model/precision.h)
  bool checkpoint_activations = false;  // training commands only
};

// Range checks for sizes, counts and ratios with a plain message ("--batch-size: expected a
// number >= 1, got 0"); bounds are inclusive.
CLI::Validator at_least(double min);
CLI::Validator in_range(double min, double max);

void add_runtime_options(CLI::App* cmd, RuntimeOptions& o);
// --precision, for commands that run forward passes (training, evaluation, benchmarks).
void add_precision_option(CLI::App* cmd, RuntimeOptions& o);
// --checkpoint-activations, for training commands.
void add_checkpointing_option(CLI::App* cmd, RuntimeOptions& o);
// The trainer's flags (--lr, --epochs, ...: every option of train/trainer_options.h with a
// flag), bound to `t`; their defaults are t's values now.
void add_trainer_options(CLI::App* cmd, TrainerOptions& t);
// Validates the options (precision against device and dtype included), applies --threads,
// and returns load settings.
LoadOptions apply_runtime_options(const RuntimeOptions& o);
// The options' precision and activation checkpointing, into a trainer's options.
void apply_training_options(const RuntimeOptions& o, TrainerOptions& t);

// What every training command (ot emulator, ot finetune) has: the trainer's flags, the runtime
// options, --precision and --checkpoint-activations; and, in the command's callback, all of
// them applied (apply_runtime_options, apply_training_options, the schedule's name checked).
void add_training_command_options(CLI::App* cmd, TrainerOptions& t, RuntimeOptions& o);
LoadOptions apply_training_command_options(const RuntimeOptions& o, TrainerOptions& t);

// FORMAT=PATH of an image flag (--images, --distill-images, ...) and the split to read.
ImageDataSpec parse_image_spec(const std::string& flag, const std::string& arg, const std::string& split,
                               int64_t max_examples = 0);

// Runs a command body, marks its run file (if any) completed or failed, and turns a
// preemption (ot::Preempted: SIGUSR1/SIGTERM during training, state already written) into
// exit code 75.
void run_recorded(results::RunRecorder* rec, const std::function<void()>& body);

}  // namespace ot::cli
