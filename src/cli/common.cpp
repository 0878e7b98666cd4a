// cli/common.cpp: see common.h.
#include "cli/common.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <iostream>

#include "util/device.h"
#include "util/signals.h"

namespace ot::cli {

void add_runtime_options(CLI::App* cmd, RuntimeOptions& o) {
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "weight and compute dtype: fp32, bf16 or fp16")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: LibTorch default)")->check(CLI::NonNegativeNumber);
}

LoadOptions apply_runtime_options(const RuntimeOptions& o) {
  LoadOptions l;
  l.device = parse_device(o.device);
  l.dtype = parse_dtype(o.dtype);
  if (o.threads > 0) at::set_num_threads(o.threads);
  return l;
}

void run_recorded(results::RunRecorder* rec, const std::function<void()>& body) {
  try {
    body();
    if (rec) rec->complete();
  } catch (const std::exception& e) {
    if (rec) rec->fail(e.what());
    if (stop_requested()) {
      std::cerr << "ot: " << e.what() << "\n";
      std::exit(kExitPreempted);
    }
    throw;
  }
}

}  // namespace ot::cli
