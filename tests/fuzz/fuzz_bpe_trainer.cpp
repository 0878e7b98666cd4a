// tests/fuzz/fuzz_bpe_trainer.cpp: libFuzzer target for the BPE trainer's input
// (tokenizer/bpe_trainer.h): read_training_texts on the input file, train_byte_bpe with
// special tokens and options from the input, write_byte_bpe, and the written vocab.json +
// merges.txt read back by ByteBpeTokenizer, which must give decode(encode(x)) == x for every
// training text. Input: byte 0 sets vocab_size (256 + number of special tokens + byte 0),
// byte 1 min_frequency (1 + byte 1 % 4) and max_bytes (unset when byte 1 < 128, else
// 16 * byte 1); the rest is NUL-separated parts: the first holds the special tokens, one a
// line (empty: none), each further part is one training file. Any input must train or throw
// ot::Error; anything else escaping, a broken round trip, a crash or a sanitizer report is
// a bug. Torch-free.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_bpe.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 2048) return 0;  // training is quadratic-ish; keep runs short
  const std::string dir = ot::fuzz::scratch_dir() + "/bpe";
  ot::fuzz::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::vector<std::string> parts(1);
  for (std::size_t i = 2; i < size; ++i) {
    if (data[i] == 0) parts.emplace_back();
    else parts.back() += static_cast<char>(data[i]);
  }
  ot::BpeTrainerOptions opts;
  opts.special_tokens.clear();
  std::size_t start = 0;
  const std::string& specials = parts[0];
  while (start < specials.size()) {
    std::size_t nl = specials.find('\n', start);
    if (nl == std::string::npos) nl = specials.size();
    opts.special_tokens.push_back(specials.substr(start, nl - start));
    start = nl + 1;
  }
  opts.vocab_size = 256 + static_cast<std::int64_t>(opts.special_tokens.size()) + data[0];
  opts.min_frequency = 1 + data[1] % 4;
  if (data[1] >= 128) opts.max_bytes = 16u * data[1];

  std::vector<std::string> files;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    files.push_back(dir + "/text" + std::to_string(i) + ".txt");
    ot::fuzz::write_file(files.back(), reinterpret_cast<const std::uint8_t*>(parts[i].data()), parts[i].size());
  }

  try {
    const std::vector<std::string> texts = ot::read_training_texts(files, opts.max_bytes);
    const ot::TrainedBpe bpe = ot::train_byte_bpe(texts, opts);
    const std::string out = dir + "/tok";
    ot::write_byte_bpe(bpe, out);
    auto tok = ot::ByteBpeTokenizer::from_vocab_and_merges(out + "/vocab.json", out + "/merges.txt");
    for (const std::string& t : texts) {
      if (tok->decode(tok->encode(t)) != t) {
        std::fprintf(stderr, "fuzz_bpe_trainer: trained tokenizer does not round-trip a text\n");
        std::abort();
      }
    }
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
