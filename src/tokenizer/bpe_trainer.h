// tokenizer/bpe_trainer.h: trains a GPT-2 style byte-level BPE vocabulary on plain text and
// writes it in the files that load_tokenizer / ByteBpeTokenizer read.
//
// Training (train_byte_bpe):
//  * each text is cut at every occurrence of a special token (earliest first, the longest at
//    equal positions, as ByteBpeTokenizer::encode matches them); special tokens are never
//    learned from. The pieces are pre-tokenized with ByteBpeTokenizer's own GPT-2 regex, and
//    identical words are counted once, with their frequency.
//  * every word starts as its bytes. Each step merges the adjacent symbol pair with the
//    highest count over all words (an occurrence counts its word's frequency); inside a word,
//    occurrences are merged left to right without overlap ("a a a" with (a, a) -> "aa a").
//  * ties: the higher count wins; among equal counts the pair whose left token's bytes are
//    lexicographically smaller (as unsigned bytes) wins, then the one whose right token's
//    bytes are smaller. Nothing else (hash order, input order) affects the result, so two
//    trainings on the same text give identical files.
//  * training stops when the vocabulary holds vocab_size tokens, when the best pair occurs
//    fewer than min_frequency times, or when no pair is left.
//  * a merge whose result is already in the vocabulary (the same bytes reached from another
//    pair, e.g. "ab"+"c" after "a"+"bc") reuses that token: one more merge, no new token.
//    A pair is merged at most once, and a pair whose merged token would be spelled like a
//    special token in vocab.json (e.g. a special token "ĠĠ" and two spaces) is never merged.
// Ids: the special tokens first (0 .. k-1, in the order given), then the 256 byte symbols in
// byte order (id k + byte), then the merged tokens in the order learned.
//
// Files (write_byte_bpe, each written atomically into the directory):
//  * tokenizer.json: HF tokenizers format (BPE model, ByteLevel pre-tokenizer without prefix
//    space, merges as "a b" strings); special tokens are added tokens, so each encodes as one
//    id. load_tokenizer prefers this file.
//  * vocab.json + merges.txt: the same vocabulary and merges as GPT-2 ships them (token ->
//    id in id order; "#version: 0.2" then one "a b" merge a line, in rank order). Read on
//    their own, only "<|endoftext|>" is treated as special (ByteBpeTokenizer's rule).
//  * tokenizer_config.json: GPT2Tokenizer settings with bos_token = eos_token = the first
//    special token (the end-of-text token models use as BOS and EOS).
// ByteBpeTokenizer reports eos_id() for a first special token named "</s>" or
// "<|endoftext|>"; TrainedBpe::eos_id gives the id whatever its name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ot {

struct BpeTrainerOptions {
  // Total vocabulary: special tokens + 256 byte symbols + merged tokens.
  int64_t vocab_size = 0;
  // A pair must occur at least this often (counting word frequencies) to be merged.
  int64_t min_frequency = 2;
  // Matched verbatim, never split; the first one is the end-of-text (BOS/EOS) token.
  std::vector<std::string> special_tokens{"</s>"};
  // read_training_texts: read at most this many bytes over all files (cut at a UTF-8
  // character boundary, later files not read). Unset: everything.
  std::optional<uint64_t> max_bytes;
};

struct TrainedBpe {
  std::vector<std::string> tokens;  // id -> raw bytes (special tokens: their text)
  int64_t num_special = 0;          // ids 0 .. num_special-1 are the special tokens
  struct Merge {
    int32_t left, right, result;  // token ids; result may be an older token (see above)
    int64_t count;                // occurrences when it was merged
  };
  std::vector<Merge> merges;  // rank order
  uint64_t training_bytes = 0;
  uint64_t words = 0;           // pre-tokenized words counted
  uint64_t distinct_words = 0;
  // Why training ended: "vocab_size", "min_frequency" or "no pairs".
  std::string stopped_by;

  std::optional<int64_t> eos_id() const {
    return num_special > 0 ? std::optional<int64_t>(0) : std::nullopt;
  }
  // A token as vocab.json spells it: special tokens verbatim, others in GPT-2's byte alphabet.
  std::string vocab_string(int64_t id) const;
};

// Reads the files in order (at most options.max_bytes in all); one text per file.
// Throws ot::Error for no files, an unreadable file, or no text at all.
std::vector<std::string> read_training_texts(const std::vector<std::string>& files,
                                             std::optional<uint64_t> max_bytes);

// Trains on the texts (each pre-tokenized on its own). Throws ot::Error naming the option
// for vocab_size < 256 + special tokens, min_frequency < 1, or an empty, repeated, invalid
// UTF-8 or single-byte-symbol special token.
TrainedBpe train_byte_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options);

// Writes tokenizer.json, vocab.json, merges.txt and tokenizer_config.json into `dir`
// (created if needed; other files there are left alone).
void write_byte_bpe(const TrainedBpe& bpe, const std::string& dir);

}  // namespace ot
