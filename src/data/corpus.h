// data/corpus.h: language-modelling corpora. Reads plain text (the whole file is one
// document) or JSONL (one document per line, text under a named field), tokenizes once and
// caches the ids in a binary token file, and cuts them into block_size blocks like HF
// run_clm `group_texts`. LmBlockSource serves the blocks (input_ids = labels, no padding).
//
// Cache file (<cache_dir>/<source name>.<8 hex of the source path>.tokens), little-endian:
//   char[8] magic "OTTOKENS", u32 version (2), u32 ids_check (FNV-1a 64 over the ids' bytes,
//   its two halves xor'ed: a damaged entry of the right size is caught), u64 vocab_size,
//   u64 tokenizer_hash (FNV-1a 64 over the tokenizer file(s): names and bytes),
//   u64 source_hash (FNV-1a 64 over the source bytes), u64 source_size,
//   u64 options_hash (format, text field, prefix/separator ids), u64 n_tokens,
//   then n_tokens x int32 ids.
// It is reused only when every field matches and every id is inside the vocabulary;
// otherwise (or when it is truncated or corrupt) it is rebuilt and replaced atomically.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/batch.h"
#include "tokenizer/tokenizer.h"

namespace ot {

struct CorpusOptions {
  std::string format = "auto";           // "text" | "jsonl" | "auto" (.jsonl -> jsonl, else text)
  std::string text_field = "text";       // jsonl: key holding each document
  std::optional<int64_t> prefix_id;      // id before every document (OPT's per-row "</s>")
  std::optional<int64_t> separator_id;   // id after every document (e.g. EOS)
  std::string cache_dir;                 // "" = no cache
  std::string tokenizer_path;            // file or directory the tokenizer came from; needed with cache_dir
};

struct CorpusTokens {
  std::vector<int32_t> ids;
  int64_t documents = 0;       // documents tokenized (0 when read from the cache)
  std::string cache_path;      // "" without a cache
  std::string cache_status;    // "none", "hit", "built" or "rebuilt: <why the old one was unusable>"
};

// Reads, tokenizes (or loads the cache) and returns the concatenated ids.
// Throws ot::Error "<file>:<line>: ..." for a JSONL line that is not an object or whose
// field is missing or not a string.
CorpusTokens load_corpus_tokens(const std::string& path, const Tokenizer& tok, const CorpusOptions& opts = {});

// Tokenizes documents one by one and concatenates them: [prefix] doc [separator] ...
// (the separator also follows the last document).
std::vector<int32_t> tokenize_documents(const std::vector<std::string>& docs, const Tokenizer& tok,
                                        std::optional<int64_t> prefix_id = std::nullopt,
                                        std::optional<int64_t> separator_id = std::nullopt);

// The cache file used for `path` under `cache_dir`.
std::string corpus_cache_path(const std::string& path, const std::string& cache_dir);

// HF group_texts over the whole concatenation: floor(n / block_size) full blocks, the
// remainder dropped; a corpus shorter than one block stays one short block (HF keeps
// total_length when it is below block_size). Returns (offset, length) per block.
std::vector<std::pair<int64_t, int64_t>> group_texts(int64_t n_tokens, int64_t block_size);

class LmBlockSource : public BatchSource {
 public:
  LmBlockSource(std::shared_ptr<const std::vector<int32_t>> ids, int64_t block_size);
  LmBlockSource(std::vector<int32_t> ids, int64_t block_size)
      : LmBlockSource(std::make_shared<const std::vector<int32_t>>(std::move(ids)), block_size) {}

  int64_t size() const override { return static_cast<int64_t>(blocks_.size()); }
  // input_ids = labels, (B, T) int64; attention_mask undefined (blocks are never padded).
  Batch batch(const std::vector<int64_t>& indices) const override;
  int64_t block_size() const { return block_size_; }

 private:
  std::shared_ptr<const std::vector<int32_t>> ids_;
  int64_t block_size_;
  std::vector<std::pair<int64_t, int64_t>> blocks_;
};

}  // namespace ot
