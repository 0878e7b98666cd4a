// cli/inspect.cpp: `ot inspect DIR [--json]`: architecture, parameter counts by part,
// dtypes, files, and the block map of offsite bundles.
#include <iostream>

#include "cli/commands.h"
#include "model/inspect.h"

namespace ot::cli {

void register_inspect(CLI::App& app) {
  struct Args {
    std::string dir;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a checkpoint directory or offsite bundle");
  cmd->add_option("dir", args->dir, "HF checkpoint directory or offsite bundle")->required();
  cmd->add_flag("--json", args->json, "print JSON instead of text");
  cmd->callback([args] {
    nlohmann::json info = inspect_model_dir(args->dir);
    if (args->json) std::cout << info.dump(2) << "\n";
    else std::cout << format_inspection(info);
  });
}

}  // namespace ot::cli
