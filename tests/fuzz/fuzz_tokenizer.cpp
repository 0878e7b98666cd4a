// tests/fuzz/fuzz_tokenizer.cpp: libFuzzer target for the GPT-2 byte-level BPE and the
// llama2.c tokenizer. For arbitrary bytes x it checks that the pre-tokenizer tiles x,
// that every id is inside the vocabulary, and that decode(encode(x)) == x (both
// tokenizers promise this for every byte string, valid UTF-8 or not; llama2.c with BOS,
// whose decode drops the dummy-prefix space). Any violation aborts.
// Vocabularies come from $OT_SHARED_DIR or OT_REPO_ROOT/../shared.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "tokenizer/byte_bpe.h"
#include "tokenizer/llama2c_tokenizer.h"

namespace {

std::string shared_path(const std::string& rel) {
  if (const char* env = std::getenv("OT_SHARED_DIR")) return std::string(env) + "/" + rel;
  return std::string(OT_REPO_ROOT) + "/../shared/" + rel;
}

struct Tokenizers {
  std::unique_ptr<ot::ByteBpeTokenizer> bpe;
  std::unique_ptr<ot::Llama2cTokenizer> l2c;
  Tokenizers() {
    const std::string gpt2 = shared_path("data/tokenizers/gpt2");
    bpe = ot::ByteBpeTokenizer::from_vocab_and_merges(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe");
    l2c = ot::Llama2cTokenizer::from_file(shared_path("data/models/stories260K/tok512.bin"));
  }
};

[[noreturn]] void violation(const char* what, const std::string& input) {
  std::fprintf(stderr, "fuzz_tokenizer: %s (input of %zu bytes)\n", what, input.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Tokenizers t;  // loaded once; a load failure throws and stops the fuzzer loudly
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::string joined;
  for (const auto& w : t.bpe->pre_tokenize(text)) {
    if (w.empty()) violation("empty pre-tokenizer word", text);
    joined += w;
  }
  if (joined != text) violation("pre-tokenizer words do not tile the input", text);

  auto ids = t.bpe->encode(text);
  for (int64_t id : ids)
    if (id < 0 || id >= t.bpe->vocab_size()) violation("BPE id outside the vocabulary", text);
  if (t.bpe->decode(ids) != text) violation("BPE decode(encode(x)) != x", text);

  auto lids = t.l2c->encode(text, true);
  if (lids.empty() || lids.front() != 1) violation("llama2c encode lost BOS", text);
  if (t.l2c->decode(lids) != text) violation("llama2c decode(encode(x, bos)) != x", text);
  return 0;
}
