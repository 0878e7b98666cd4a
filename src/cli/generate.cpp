// cli/generate.cpp: `ot generate --model DIR [--tokenizer PATH] --prompt STR
// --max-new-tokens N [--temperature T] [--top-p P] [--seed S]`: prints the prompt followed
// by the continuation (T = 0: greedy).
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/generate.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

void register_generate(CLI::App& app) {
  struct Args {
    std::string model, tokenizer, prompt;
    GenerateOptions gen;
    bool no_bos = false;
    bool ids = false;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a model (greedy or sampled)");
  cmd->add_option("--model", args->model, "HF checkpoint directory")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer file or directory (default: the model directory)");
  cmd->add_option("--prompt", args->prompt, "text to continue (may be empty)")->required();
  cmd->add_option("--max-new-tokens", args->gen.max_new_tokens, "tokens to generate")
      ->required()->check(at_least(0));
  cmd->add_option("--temperature", args->gen.temperature, "0 = greedy")->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--top-p", args->gen.top_p, "nucleus sampling mass in (0, 1]")->capture_default_str()->check(in_range(0.0, 1.0));
  cmd->add_option("--seed", args->gen.seed, "sampling seed")->capture_default_str()->check(at_least(0));
  cmd->add_flag("--no-bos", args->no_bos, "do not prepend the tokenizer's BOS token");
  cmd->add_flag("--print-ids", args->ids, "also print the token ids (prompt + new) as a JSON line on stderr");
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    LoadOptions lo = apply_runtime_options(args->rt);
    std::string tok_path = args->tokenizer.empty() ? args->model : args->tokenizer;
    std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
    DecoderLM model = load_model(args->model, lo);
    OT_REQUIRE(tok->vocab_size() <= model->config().vocab_size, tok_path, ": tokenizer has ",
               tok->vocab_size(), " tokens but the model's vocabulary has only ",
               model->config().vocab_size);
    std::vector<int64_t> prompt = tok->encode(args->prompt, !args->no_bos);
    if (prompt.empty()) {
      auto start = tok->bos_id() ? tok->bos_id() : model->config().bos_token_id;
      OT_REQUIRE(start.has_value(), "--prompt: empty, and neither the tokenizer nor config.json has a BOS token to start from");
      prompt.push_back(*start);
    }
    if (model->config().eos_token_id) args->gen.stop_ids.push_back(*model->config().eos_token_id);
    // Stream: print the prompt, then each new piece as soon as it is chosen.
    std::cout << tok->decode(prompt) << std::flush;
    int64_t prev = prompt.back();
    std::vector<int64_t> all = prompt;
    generate(model, prompt, args->gen, [&](int64_t id) {
      if (id < tok->vocab_size()) std::cout << tok->decode_piece(prev, id) << std::flush;
      prev = id;
      all.push_back(id);
    });
    std::cout << "\n";
    if (args->ids) {
      std::cerr << "[";
      for (size_t i = 0; i < all.size(); ++i) std::cerr << (i ? "," : "") << all[i];
      std::cerr << "]\n";
    }
  });
}

}  // namespace ot::cli
