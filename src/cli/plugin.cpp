// cli/plugin.cpp: `ot plugin --model FULL --bundle BUNDLE --adapter ADAPTER --out DIR`: the
// model owner checks the returned adapter against the bundle it issued (offsite/adapter.h:
// only the issued blocks, and the head where issued, in the issued dtypes and shapes, finite),
// writes it (LoRA already merged) into the full model; `--peft DIR` in place of --adapter
// takes a PEFT LoRA adapter instead (offsite/peft_lora.h: only projections of adapter blocks,
// merged onto the full model's weights, then the same checks) and saves the adapted model as an
// ordinary HF checkpoint, with its tokenizer or image processor. A vision bundle issued with
// its own classifier gives the full model that classifier first.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "experiment/jobs.h"
#include "model/load.h"
#include "offsite/adapter.h"
#include "offsite/peft_lora.h"
#include "tokenizer/tokenizer.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

void register_plugin(CLI::App& app) {
  struct Args {
    std::string model, bundle, adapter, peft, out, record;
    bool hash_files = false;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plugin", "Plug a fine-tuned adapter into the full model (model owner)");
  cmd->add_option("--model", args->model, "the full model (HF checkpoint directory)")->required();
  cmd->add_option("--bundle", args->bundle,
                  "the bundle issued to the data owner (`ot emulator --out`): the adapter is checked against it")
      ->required();
  CLI::Option* adapter =
      cmd->add_option("--adapter", args->adapter, "adapter directory written by `ot finetune` (offsite_adapter.json)");
  CLI::Option* peft = cmd->add_option("--peft", args->peft,
                                      "a PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) "
                                      "instead of --adapter, e.g. the peft/ of a LoRA fine-tune");
  adapter->excludes(peft);
  cmd->add_option("--out", args->out, "where to write the adapted full model")->required();
  cmd->add_option("--record", args->record, "record the run (provenance, adapter identity) to this HDF5 file");
  cmd->add_flag("--hash-files", args->hash_files, "record SHA-256 digests of the bundle and the adapter (with --record)");
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    OT_REQUIRE(args->adapter.empty() != args->peft.empty(), "ot plugin: give exactly one of --adapter or --peft");
    auto rec = open_recorder(args->record, "plugin",
                             "ot plugin --model " + args->model + " --bundle " + args->bundle +
                                 (args->peft.empty() ? " --adapter " + args->adapter : " --peft " + args->peft), "");
    LoadOptions lo = apply_runtime_options(args->rt);
    run_recorded(rec.get(), [&] {
      const bool from_peft = !args->peft.empty();
      const std::string source = from_peft ? args->peft : args->adapter;
      Adapter a;
      if (!from_peft) a = load_adapter(args->adapter);  // read the small inputs first
      const bool vision = is_vision_model_dir(args->model);
      VisionEncoder encoder{nullptr};
      DecoderLM decoder{nullptr};
      if (vision)
        encoder = load_vision_model(args->model, lo);
      else
        decoder = load_model(args->model, lo);
      BlockModelImpl& full = vision ? static_cast<BlockModelImpl&>(*encoder) : *decoder;
      adopt_issued_classifier(full, args->bundle);
      const IssuedAdapter issued = read_issued_adapter(args->bundle, full);
      if (from_peft)
        a = plug_in_peft_lora(full, args->peft, issued);
      else
        plug_in(full, a, args->adapter, issued);
      nlohmann::json extra = {{"offsite_plugin", {{from_peft ? "peft" : "adapter", source}, {"bundle", args->bundle},
                                                  {"blocks", a.config["blocks"]}, {"fingerprint", issued.fingerprint}}}};
      // Weights and tokenizer (or image processor) appear together: a kill between two
      // writes left a checkpoint without them.
      write_dir_atomically(args->out, [&](const std::string& tmp) {
        if (vision) {
          save_model(encoder, tmp, extra);
          const std::string processor = path_join(args->model, "preprocessor_config.json");
          if (file_exists(processor))
            write_text_file_atomically(path_join(tmp, "preprocessor_config.json"), read_text_file(processor));
        } else {
          save_model(decoder, tmp, extra);
          copy_tokenizer_files(args->model, tmp);
        }
      });
      if (rec) {
        rec->set_attribute("model", args->model);
        rec->set_attribute("bundle", args->bundle);
        rec->set_attribute("adapter", source);
        rec->set_attribute("adapter_fingerprint", issued.fingerprint);
        rec->set_attribute("out", args->out);
        if (args->hash_files) {
          rec->set_attribute("bundle_sha256", directory_sha256(args->bundle));
          rec->set_attribute("adapter_sha256", directory_sha256(source));
        }
      }
      std::cout << args->out << ": " << arch_name(full.config().arch) << " with " << a.tensors.size()
                << " adapter tensors from " << source << (from_peft ? " (PEFT LoRA, merged; blocks " : " (blocks ") << a.config["blocks"].dump()
                << ", checked against " << args->bundle << ")\n";
    });
  });
}

}  // namespace ot::cli
