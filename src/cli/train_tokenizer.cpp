// cli/train_tokenizer.cpp: `ot train-tokenizer --input FILE [--input FILE...] --vocab-size N
// [--min-frequency F] [--special-token S...] [--max-bytes B] --out DIR`: trains a byte-level
// BPE (tokenizer/bpe_trainer.h), writes it, reloads it and reports bytes per token on the
// training text.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ot::cli {

void register_train_tokenizer(CLI::App& app) {
  struct Args {
    std::vector<std::string> inputs, specials;
    int64_t vocab_size = 0, min_frequency = 2;
    uint64_t max_bytes = 0;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train-tokenizer", "Train a GPT-2 style byte-level BPE tokenizer on text files");
  cmd->footer(
      "Writes tokenizer.json, vocab.json, merges.txt and tokenizer_config.json into --out.\n"
      "Ids: special tokens first (the first one is the BOS/EOS token), then the 256 byte\n"
      "symbols, then merged tokens. Ties between equally frequent pairs go to the pair whose\n"
      "left, then right token is lexicographically smaller (as bytes), so training is\n"
      "deterministic. --special-token may be repeated; without it the one special token is </s>.");
  cmd->add_option("--input", args->inputs, "text file to train on (repeatable)")->required();
  cmd->add_option("--vocab-size", args->vocab_size,
                  "total vocabulary size: special tokens + 256 byte symbols + merged tokens")
      ->required()->check(at_least(1));
  cmd->add_option("--min-frequency", args->min_frequency, "a pair must occur this often to be merged")
      ->capture_default_str()->check(at_least(1));
  cmd->add_option("--special-token", args->specials, "special token, matched verbatim (repeatable; default </s>)");
  auto* max_bytes = cmd->add_option("--max-bytes", args->max_bytes, "read at most this many bytes of text")->check(at_least(1));
  cmd->add_option("--out", args->out, "directory to write the tokenizer files into")->required();
  cmd->callback([args, max_bytes] {
    BpeTrainerOptions o;
    o.vocab_size = args->vocab_size;
    o.min_frequency = args->min_frequency;
    if (!args->specials.empty()) o.special_tokens = args->specials;
    if (max_bytes->count()) o.max_bytes = args->max_bytes;

    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> texts = read_training_texts(args->inputs, o.max_bytes);
    TrainedBpe bpe = train_byte_bpe(texts, o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_byte_bpe(bpe, args->out);

    // Bytes per token as the written tokenizer really encodes the training text.
    auto tok = load_tokenizer(args->out);
    uint64_t tokens = 0;
    for (const auto& t : texts) tokens += tok->encode(t).size();
    const auto merged = static_cast<int64_t>(bpe.tokens.size()) - bpe.num_special - 256;
    char bpt[32];
    std::snprintf(bpt, sizeof bpt, "%.3f", tokens ? double(bpe.training_bytes) / double(tokens) : 0.0);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.2f", seconds);
    std::cout << "vocabulary size: " << bpe.tokens.size() << " (" << bpe.num_special << " special, 256 bytes, "
              << merged << " merged)\n"
              << "merges: " << bpe.merges.size() << " (stopped by " << bpe.stopped_by << ")\n"
              << "training text: " << bpe.training_bytes << " bytes in " << texts.size() << " file(s), "
              << bpe.words << " words (" << bpe.distinct_words << " distinct), trained in " << secs << " s\n"
              << "bytes per token: " << bpt << " (" << tokens << " tokens)\n";
    if (bpe.num_special > 0)
      std::cout << "end-of-text token: " << bpe.tokens[0] << " = id 0 (bos_token and eos_token)\n";
    std::cout << "wrote " << args->out << " (tokenizer.json, vocab.json, merges.txt, tokenizer_config.json)\n";
  });
}

}  // namespace ot::cli
