// tokenizer/sentencepiece_tokenizer.h: SentencePieceTokenizer, a thin wrapper over
// libsentencepiece for LLaMA-style tokenizer.model files: encode with optional BOS,
// decode, and a streaming decode_piece with the same rules as llama2.c (a piece after
// BOS loses its leading space, byte pieces become raw bytes, control pieces are empty).
// libsentencepiece is reached through libot_spm_shim.so, loaded privately at first use
// (see sentencepiece_shim/spm_shim.h for why); set OT_SPM_SHIM to override its path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ot {

class SentencePieceTokenizer : public Tokenizer {
 public:
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string decode_piece(int64_t prev, int64_t id) const override;

  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::string kind() const override { return "sentencepiece"; }

 private:
  SentencePieceTokenizer() = default;
  void check_id(int64_t id) const;

  std::string source_;
  void* handle_ = nullptr;  // the shim's SentencePieceProcessor
  int64_t vocab_size_ = 0;
  int bos_ = -1, eos_ = -1;
};

}  // namespace ot
