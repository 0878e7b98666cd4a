// cli/convert.cpp: `ot convert <format>`: turns foreign checkpoints into Hugging Face
// checkpoint directories. Formats: llama2c (llama2.c fp32 checkpoint + tokenizer.bin) and
// eva-vit (LAVIS's EVA image encoders, e.g. BLIP-2's eva_vit_g.pth).
#include <filesystem>
#include <iostream>
#include <memory>

#include "checkpoint/eva_vit.h"
#include "checkpoint/llama2c.h"
#include "cli/commands.h"
#include "model/load.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

namespace {

struct Llama2cOptions {
  std::string checkpoint;
  std::string tokenizer;
  std::string out;
  bool force = false;
};

struct PlainOptions {
  std::string model, out;
  bool force = false;
};

struct EvaVitOptions {
  std::string checkpoint;
  std::string entry;
  int64_t num_heads = 0;
  std::string out;
  bool force = false;
};

// Converting replaces the output directory wholesale, so never clobber a non-empty one
// unless asked to.
void require_writable_output(const std::string& out, bool force) {
  OT_REQUIRE(!file_exists(out), out, ": exists and is a file, expected a directory path");
  std::error_code ec;
  if (dir_exists(out) && !std::filesystem::is_empty(out, ec) && !force) {
    fail(out, ": directory exists and is not empty; pass --force to replace it");
  }
}

}  // namespace

void register_convert(CLI::App& app) {
  CLI::App* convert = app.add_subcommand(
      "convert", "Convert a foreign checkpoint into a Hugging Face checkpoint directory");
  convert->require_subcommand(1);

  auto opts = std::make_shared<Llama2cOptions>();
  CLI::App* l2c = convert->add_subcommand(
      "llama2c",
      "llama2.c fp32 checkpoint (e.g. stories260K.bin) + tokenizer.bin -> HF LLaMA directory "
      "(config.json, model.safetensors, tokenizer.bin)");
  l2c->add_option("--checkpoint", opts->checkpoint, "llama2.c checkpoint (legacy fp32 export)")
      ->required();
  l2c->add_option("--tokenizer", opts->tokenizer, "llama2.c tokenizer.bin, copied into the output")
      ->required();
  l2c->add_option("--out", opts->out, "output directory (written atomically)")->required();
  l2c->add_flag("--force", opts->force, "replace a non-empty output directory");
  l2c->callback([opts] {
    require_writable_output(opts->out, opts->force);
    convert_llama2c(opts->checkpoint, opts->tokenizer, opts->out);
    std::cout << "wrote " << opts->out << " (config.json, model.safetensors, tokenizer.bin)\n";
  });

  auto plain = std::make_shared<PlainOptions>();
  CLI::App* ph = convert->add_subcommand(
      "plain-hf",
      "a bundle with rank-compressed or channel-pruned emulator blocks -> the same model in the layout transformers "
      "loads (factors multiplied out, pruned channels as zeros)");
  ph->add_option("--model", plain->model, "model or bundle directory")->required();
  ph->add_option("--out", plain->out, "output directory (written atomically)")->required();
  ph->add_flag("--force", plain->force, "replace a non-empty output directory");
  ph->callback([plain] {
    require_writable_output(plain->out, plain->force);
    if (is_vision_model_dir(plain->model)) {
      VisionEncoder m = load_vision_model(plain->model);
      make_plain(*m);
      save_model(m, plain->out);
    } else {
      DecoderLM m = load_model(plain->model);
      make_plain(*m);
      save_model(m, plain->out);
    }
    std::cout << "wrote " << plain->out << " (every projection dense, every MLP at intermediate_size)\n";
  });

  auto eva = std::make_shared<EvaVitOptions>();
  CLI::App* ev = convert->add_subcommand(
      "eva-vit",
      "EVA image encoder in LAVIS's layout (BLIP-2's eva_vit_g.pth, or a BLIP-2 checkpoint's visual_encoder "
      "with ln_vision) -> ViT-layout directory of model_type eva_vit (config.json, model.safetensors)");
  ev->add_option("--checkpoint", eva->checkpoint, "torch.save file holding the state dict")->required();
  ev->add_option("--state-dict-key", eva->entry,
                 "key of the pickled dict that holds the state dict (LAVIS's BLIP-2 checkpoints: model)");
  ev->add_option("--num-heads", eva->num_heads, "attention heads (default: 16 for EVA-ViT-g's width 1408)")
      ->check(CLI::PositiveNumber);
  ev->add_option("--out", eva->out, "output directory (written atomically)")->required();
  ev->add_flag("--force", eva->force, "replace a non-empty output directory");
  ev->callback([eva] {
    require_writable_output(eva->out, eva->force);
    const EvaVitImport m = convert_eva_vit(eva->checkpoint, eva->entry, eva->num_heads, eva->out);
    std::cout << "wrote " << eva->out << " (model_type eva_vit, " << m.config["num_hidden_layers"] << " blocks of width "
              << m.config["hidden_size"] << ", " << m.config["architectures"][0].get<std::string>()
              << (m.config["final_layernorm"].get<bool>() ? ", final LayerNorm" : ", no final LayerNorm") << ")\n";
    if (!m.left_out.empty())
      std::cout << "left out " << m.left_out.size() << " tensor(s) outside the image encoder (first: '"
                << m.left_out.front() << "')\n";
  });
}

}  // namespace ot::cli
