// cli/plugin.cpp: `ot plugin --model FULL --adapter ADAPTER --out DIR`: the model owner
// writes the returned adapter (LoRA already merged) into the full model and saves the
// adapted model as an ordinary HF checkpoint.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "experiment/jobs.h"
#include "model/load.h"
#include "offsite/adapter.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

namespace ot::cli {

void register_plugin(CLI::App& app) {
  struct Args {
    std::string model, adapter, out, record;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plugin", "Plug a fine-tuned adapter into the full model (model owner)");
  cmd->add_option("--model", args->model, "the full model (HF checkpoint directory)")->required();
  cmd->add_option("--adapter", args->adapter, "adapter directory written by `ot finetune`")->required();
  cmd->add_option("--out", args->out, "where to write the adapted full model")->required();
  cmd->add_option("--record", args->record, "record the run (provenance, adapter identity) to this HDF5 file");
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    auto rec = open_recorder(args->record, "plugin", "ot plugin --model " + args->model + " --adapter " + args->adapter, "");
    LoadOptions lo = apply_runtime_options(args->rt);
    run_recorded(rec.get(), [&] {
      Adapter a = load_adapter(args->adapter);  // validate the small input first
      DecoderLM full = load_model(args->model, lo);
      plug_in(full, a, args->adapter);
      nlohmann::json extra = {{"offsite_plugin", {{"adapter", args->adapter}, {"blocks", a.config["blocks"]},
                                                  {"fingerprint", a.config["fingerprint"]}}}};
      // Weights and tokenizer appear together (a kill between two writes left no tokenizer).
      write_dir_atomically(args->out, [&](const std::string& tmp) {
        save_model(full, tmp, extra);
        copy_tokenizer_files(args->model, tmp);
      });
      if (rec) {
        rec->set_attribute("model", args->model);
        rec->set_attribute("adapter", args->adapter);
        rec->set_attribute("adapter_fingerprint", a.config["fingerprint"].get<std::string>());
        rec->set_attribute("out", args->out);
      }
      std::cout << args->out << ": " << arch_name(full->config().arch) << " with " << a.tensors.size()
                << " adapter tensors from " << args->adapter << " (blocks " << a.config["blocks"].dump() << ")\n";
    });
  });
}

}  // namespace ot::cli
