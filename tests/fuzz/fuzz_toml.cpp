// tests/fuzz/fuzz_toml.cpp: libFuzzer target for the experiment loader: TOML parsing,
// `extends`, ${VAR} expansion, schema defaults and validation (experiment/config.h,
// schema.h) and the sweep expansion `ot run` / `ot rerun` do next (experiment/sweep.h).
// The input is written to a file and loaded like `ot run FILE`; it is also read as a
// configuration stored in a run file (config_from_text). Any input must load or throw
// ot::Error; anything else escaping, a crash or a sanitizer report is a bug. Torch-free.
// A valid base.toml lies beside the input, so that `extends = "base.toml"` merges.
#include <cstddef>
#include <cstdint>
#include <string>

#include "experiment/config.h"
#include "experiment/sweep.h"
#include "fuzz_common.h"
#include "util/error.h"

namespace {

void plan(const ot::experiment::Config& c) {
  // Sweeps multiply out; keep the fuzzer away from legitimately huge grids.
  try {
    (void)ot::experiment::plan_runs(c);
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
}

// What `extends = "base.toml"` finds.
const char kBase[] = R"([experiment]
name = "base"
recipe = "offsite"
work_dir = "${OT_CACHE:-.cache}/work"

[model]
path = "models/tiny"

[emulator]
layers = 2

[eval]
tasks = ["piqa"]
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool base_written = [] {
    ot::fuzz::write_file(ot::fuzz::scratch_dir() + "/base.toml", reinterpret_cast<const std::uint8_t*>(kBase),
                         sizeof kBase - 1);
    return true;
  }();
  (void)base_written;
  const std::string path = ot::fuzz::scratch_dir() + "/experiment.toml";
  ot::fuzz::write_file(path, data, size);
  try {
    plan(ot::experiment::load_config(path));
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  try {
    plan(ot::experiment::config_from_text(std::string(reinterpret_cast<const char*>(data), size),
                                          "fuzz config_toml"));
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
