// cli/init.cpp: `ot init --config CONFIG.json --out DIR [--seed S]`: a freshly initialised
// model (HF-style init, std from the config's init_std / initializer_range, default 0.02)
// written as an HF checkpoint: the starting point for pretraining a foundation model.
#include <torch/torch.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/load.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

void register_init(CLI::App& app) {
  struct Args {
    std::string config, out;
    uint64_t seed = 0;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("init", "Create a randomly initialised model from a config.json");
  cmd->add_option("--config", args->config, "HF config.json describing the architecture")->required();
  cmd->add_option("--out", args->out, "checkpoint directory to write")->required();
  cmd->add_option("--seed", args->seed, "initialisation seed")->capture_default_str()->check(at_least(0));
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    LoadOptions lo = apply_runtime_options(args->rt);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(args->config));
    } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large
      fail(args->config, ": not valid JSON (", e.what(), ")");
    }
    ModelConfig cfg = parse_model_config(j, args->config);
    double std = 0.02;
    for (const char* k : {"init_std", "initializer_range"})
      if (j.contains(k) && j[k].is_number()) std = j[k].get<double>();
    torch::manual_seed(args->seed);
    DecoderLM model = build_model(cfg, lo);
    model->init_weights(std);
    save_model(model, args->out);
    std::cout << args->out << ": " << arch_name(cfg.arch) << ", " << model->num_parameters(ModelPart::kAll)
              << " parameters (init std " << std << ", seed " << args->seed << ")\n";
  });
}

}  // namespace ot::cli
