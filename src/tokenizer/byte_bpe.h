// tokenizer/byte_bpe.h: ByteBpeTokenizer, GPT-2 style byte-level BPE (pre-tokenizer regex,
// byte-to-unicode alphabet, ranked merges, special tokens), loadable from an HF
// tokenizer.json, from vocab.json + merges.txt, or from GPT-2's encoder.json + vocab.bpe.
//
// Behaviour matches transformers' slow GPT2Tokenizer (the fixture reference):
//  * special/added tokens (e.g. "<|endoftext|>") are matched, longest first, before
//    pre-tokenization; the text between them is tokenized on its own;
//  * the pre-tokenizer is GPT-2's regex with Python `regex` semantics: `\s` means exactly
//    the Unicode White_Space set (so U+0085 is whitespace and U+FEFF is not);
//  * invalid UTF-8: the input is split into maximal valid UTF-8 runs; each run is
//    pre-tokenized normally and every byte outside them becomes a word of its own (one
//    byte token). decode(encode(x)) == x therefore holds for every byte string.
// Thread safety: encode/decode are const and may run concurrently; the per-word BPE cache
// is per instance and guarded by a shared mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ot {

class ByteBpeTokenizer : public Tokenizer {
 public:
  // A vocabulary entry that is matched verbatim before pre-tokenization.
  struct AddedToken {
    std::string content;
    int64_t id = 0;
    bool special = true;
  };

  // HF tokenizer.json (model.type "BPE" with a ByteLevel pre-tokenizer).
  static std::unique_ptr<ByteBpeTokenizer> from_tokenizer_json(const std::string& path);
  // vocab.json/encoder.json (token -> id) + merges.txt/vocab.bpe (one "a b" merge a line,
  // optional leading "#version" line). "<|endoftext|>", when present, becomes special.
  static std::unique_ptr<ByteBpeTokenizer> from_vocab_and_merges(const std::string& vocab_path,
                                                                  const std::string& merges_path);
  // Builds from parts; `source` names the file(s) in error messages.
  ByteBpeTokenizer(std::unordered_map<std::string, int64_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   std::vector<AddedToken> added, const std::string& source,
                   bool add_prefix_space = false);
  ~ByteBpeTokenizer() override;

  std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  std::optional<int64_t> eos_id() const override { return eos_; }
  std::string kind() const override { return "byte_bpe"; }

  // When true, special tokens in the text are not matched and get tokenized as plain text
  // (transformers' split_special_tokens=True). Default false.
  void set_split_special_tokens(bool split) { split_special_ = split; }

  // The pre-tokenizer alone: the text split into words (byte ranges), exposed for tests.
  std::vector<std::string> pre_tokenize(const std::string& text) const;
  // The same words streamed in order as fn(first byte, size), none collected (training).
  void for_each_pre_token(const std::string& text,
                          const std::function<void(const char*, std::size_t)>& fn) const;
  // Token id for an exact vocabulary string (byte-level alphabet), or -1.
  int64_t token_to_id(const std::string& token) const;

 private:
  void encode_plain(const std::string& text, std::vector<int64_t>& out) const;
  void encode_word(const char* data, std::size_t size, std::vector<int64_t>& out) const;
  void bpe(const char* data, std::size_t size, std::vector<int64_t>& out) const;
  template <class Fn>
  void for_each_word(const std::string& text, Fn&& fn) const;

  struct Merge {
    int32_t rank;
    int32_t id;  // id of the merged token
  };

  std::string source_;
  std::unordered_map<std::string, int64_t> vocab_;  // byte-level alphabet string -> id
  std::vector<std::string> id_to_bytes_;            // id -> raw bytes (decoded)
  std::vector<bool> id_known_;                      // ids that really exist (holes possible)
  int32_t byte_id_[256];                            // initial symbol of each byte
  std::unordered_map<uint64_t, Merge> merges_;      // (left id << 32 | right id) -> merge
  std::vector<AddedToken> added_;                   // sorted longest first
  std::optional<int64_t> eos_;
  bool add_prefix_space_ = false;
  bool split_special_ = false;

  struct Regex;
  std::unique_ptr<Regex> regex_;

  // Per-word cache: word bytes -> ids. Bounded; cleared when full.
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// GPT-2's reversible byte -> printable code point table (e.g. ' ' -> U+0120 'Ġ').
const std::vector<uint32_t>& gpt2_byte_to_unicode();

}  // namespace ot
