// tokenizer/llama2c_tokenizer.h: Llama2cTokenizer, the vocabulary format of llama2.c's
// tokenizer.bin / tok512.bin (int32 max_token_length, then per token: float32 score,
// int32 byte length, bytes) with encode/decode exactly as llama2.c run.c does them.
//
// Encoding (run.c encode()): optional BOS (id 1); a dummy-prefix " " when the text is
// non-empty; one symbol per UTF-8 character (run.c's byte grouping, at most 4 bytes),
// falling back to one <0xXX> token (id byte+3) per byte when the character is not in the
// vocabulary; then repeatedly merge the adjacent pair whose concatenation is a vocabulary
// entry with the highest score (leftmost on ties) until no pair qualifies. Unlike run.c's
// C strings, NUL bytes in the text are kept and encoded as bytes.
// Decoding (run.c decode(prev, token)): a piece right after BOS loses its leading space,
// and "<0xXX>" pieces become that raw byte. run.c's safe_printf filter (dropping lone
// non-printable bytes) is output policy and not applied. decode(ids) skips BOS and EOS
// (ids 1 and 2, which have no text) and concatenates decode_piece(previous id, id).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ot {

class Llama2cTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kBos = 1;
  static constexpr int64_t kEos = 2;

  // Reads a tokenizer.bin; the vocabulary size is the number of records in the file.
  static std::unique_ptr<Llama2cTokenizer> from_file(const std::string& path);

  std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string decode_piece(int64_t prev, int64_t id) const override;

  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::optional<int64_t> bos_id() const override { return kBos; }
  std::optional<int64_t> eos_id() const override { return kEos; }
  std::string kind() const override { return "llama2c"; }

  const std::string& piece(int64_t id) const;
  float score(int64_t id) const;
  int max_token_length() const { return max_token_length_; }

 private:
  Llama2cTokenizer() = default;
  int64_t lookup(const std::string& s) const;
  void check_id(int64_t id) const;

  std::string source_;
  int max_token_length_ = 0;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> index_;  // piece -> first id with that piece
};

}  // namespace ot
