// tokenizer/tokenizer.h: the interface every tokenizer implements (byte-level BPE,
// sentencepiece, llama2.c vocabularies) and the loader that picks one from a path.
// Torch-free on purpose: tokenization never needs tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ot {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text -> ids. `add_bos` prepends the beginning-of-sequence id when the tokenizer has
  // one (LLaMA-style tokenizers); byte-level BPE never adds anything by itself.
  virtual std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const = 0;
  // Ids -> text. Throws ot::Error for an id outside the vocabulary.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The text of one id as it appears when streamed after `prev` (llama2.c strips the
  // leading space after BOS); default: decode({id}).
  virtual std::string decode_piece(int64_t prev, int64_t id) const { (void)prev; return decode({id}); }

  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> bos_id() const { return std::nullopt; }
  virtual std::optional<int64_t> eos_id() const { return std::nullopt; }
  // "byte_bpe", "sentencepiece", "llama2c".
  virtual std::string kind() const = 0;
};

// Loads a tokenizer from a file or a directory:
//   tokenizer.json | vocab.json + merges.txt | encoder.json + vocab.bpe  -> byte-level BPE
//   tokenizer.model                                                   -> sentencepiece
//   *.bin (llama2.c export, e.g. tok512.bin)                          -> llama2.c vocabulary
// Throws ot::Error naming the path when nothing usable is there or a file is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// Copies the tokenizer files found at `from` (a tokenizer file, or a directory holding any
// of the names above plus tokenizer_config.json / special_tokens_map.json) into the
// directory `to`, so that a written model or bundle is self-contained. Returns the number
// of files copied (0 when `from` has none).
int copy_tokenizer_files(const std::string& from, const std::string& to);

}  // namespace ot
