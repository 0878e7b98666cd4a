// cli/convert.cpp: `ot convert <format>`: turns foreign checkpoints into Hugging Face
// checkpoint directories. Formats: llama2c (llama2.c fp32 checkpoint + tokenizer.bin).
#include <filesystem>
#include <iostream>
#include <memory>

#include "checkpoint/llama2c.h"
#include "cli/commands.h"
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
}

}  // namespace ot::cli
