// cli/common.h: options several subcommands share (--device, --dtype, --threads) and the
// one place they are turned into library settings.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model/load.h"
#include "results/run_file.h"

#include <functional>

namespace ot::cli {

struct RuntimeOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";
  int threads = 0;  // 0 = LibTorch's default
};

void add_runtime_options(CLI::App* cmd, RuntimeOptions& o);
// Validates the options, applies --threads, and returns load settings.
LoadOptions apply_runtime_options(const RuntimeOptions& o);

// Runs a command body, marks its run file (if any) completed or failed, and turns a
// preemption (SIGUSR1/SIGTERM during training, state already written) into exit code 75.
void run_recorded(results::RunRecorder* rec, const std::function<void()>& body);

}  // namespace ot::cli
