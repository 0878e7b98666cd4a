// cli/common.cpp: see common.h.
#include "cli/common.h"

#include <ATen/Parallel.h>

#include "util/device.h"

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

}  // namespace ot::cli
