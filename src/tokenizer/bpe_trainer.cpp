// tokenizer/bpe_trainer.cpp: implementation of the byte-level BPE trainer (see bpe_trainer.h).
// Word counts are taken once; pair counts and a pair -> words index are then updated only for
// the words each merge touches, and a lazily invalidated max-heap yields the next pair.
#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/byte_bpe.h"
#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

constexpr int64_t kByteSymbols = 256;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t key_left(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t key_right(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// Raw bytes -> GPT-2's printable byte alphabet (as vocab.json and merges.txt spell tokens).
std::string byte_level(const std::string& raw) {
  const auto& b2u = gpt2_byte_to_unicode();
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) out += utf8::encode(b2u[c]);
  return out;
}

bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = utf8::valid_sequence_length(s.data() + i, s.size() - i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void check_options(const BpeTrainerOptions& o) {
  const auto k = static_cast<int64_t>(o.special_tokens.size());
  OT_REQUIRE(o.vocab_size >= kByteSymbols + k, "vocab_size ", o.vocab_size, " is too small: the ",
             kByteSymbols, " byte symbols and ", k, " special token(s) alone need ", kByteSymbols + k,
             "; expected vocab_size >= ", kByteSymbols + k);
  OT_REQUIRE(o.vocab_size < (int64_t{1} << 31), "vocab_size ", o.vocab_size, " is too large; expected < 2^31");
  OT_REQUIRE(o.min_frequency >= 1, "min_frequency ", o.min_frequency, ": expected an integer >= 1");
  const auto& b2u = gpt2_byte_to_unicode();
  std::unordered_set<std::string> byte_symbols, seen;
  for (unsigned b = 0; b < 256; ++b) byte_symbols.insert(utf8::encode(b2u[b]));
  for (std::size_t i = 0; i < o.special_tokens.size(); ++i) {
    const std::string& s = o.special_tokens[i];
    OT_REQUIRE(!s.empty(), "special token #", i + 1, " is empty; expected a non-empty string");
    OT_REQUIRE(valid_utf8(s), "special token #", i + 1, " is not valid UTF-8");
    OT_REQUIRE(!byte_symbols.count(s), "special token '", s,
               "' is one of the 256 byte symbols; expected a longer string such as </s>");
    OT_REQUIRE(seen.insert(s).second, "special token '", s, "' is given twice");
  }
}

// Calls fn(piece) for the text between occurrences of the special tokens.
template <class Fn>
void for_each_plain_piece(const std::string& text, const std::vector<std::string>& specials, Fn&& fn) {
  if (specials.empty()) {
    fn(text);
    return;
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t best = std::string::npos, best_len = 0;
    for (const auto& s : specials) {
      std::size_t at = text.find(s, pos);
      if (at < best || (at == best && at != std::string::npos && s.size() > best_len)) {
        best = at;
        best_len = s.size();
      }
    }
    if (best == std::string::npos) {
      if (pos < text.size()) fn(text.substr(pos));
      return;
    }
    if (best > pos) fn(text.substr(pos, best - pos));
    pos = best + best_len;
  }
}

struct Word {
  std::vector<int32_t> syms;
  int64_t count;
};

// The next pair to merge: the highest count, then the smaller (left bytes, right bytes).
struct Candidate {
  int64_t count;
  uint64_t key;
};

class Trainer {
 public:
  Trainer(std::vector<Word> words, std::vector<std::string>& tokens,
          std::unordered_map<std::string, int32_t>& ids, int32_t num_special)
      : words_(std::move(words)), tokens_(tokens), ids_(ids), num_special_(num_special),
        heap_(Lower{&tokens_}) {
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w].syms;
      for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t key = pair_key(s[i], s[i + 1]);
        counts_[key] += words_[w].count;
        auto& list = where_[key];
        if (list.empty() || list.back() != w) list.push_back(w);
      }
    }
    std::vector<uint64_t> keys;
    keys.reserve(counts_.size());
    for (const auto& kv : counts_) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    for (uint64_t key : keys) heap_.push({counts_[key], key});
  }

  void run(int64_t vocab_size, int64_t min_frequency, TrainedBpe& out) {
    out.stopped_by = "no pairs";
    while (true) {
      if (static_cast<int64_t>(tokens_.size()) >= vocab_size) {
        out.stopped_by = "vocab_size";
        return;
      }
      if (heap_.empty()) return;
      Candidate c = heap_.top();
      heap_.pop();
      auto it = counts_.find(c.key);
      if (it == counts_.end() || it->second != c.count || merged_.count(c.key)) continue;  // stale
      if (c.count < min_frequency) {
        out.stopped_by = "min_frequency";
        return;
      }
      const int32_t left = key_left(c.key), right = key_right(c.key);
      const std::string bytes = tokens_[left] + tokens_[right];
      const std::string vocab = byte_level(bytes);
      auto found = ids_.find(vocab);
      if (found != ids_.end() && found->second < num_special_) {
        merged_.insert(c.key);  // spelled like a special token: never merged (see header)
        continue;
      }
      int32_t result;
      if (found != ids_.end()) {
        result = found->second;
      } else {
        result = static_cast<int32_t>(tokens_.size());
        tokens_.push_back(bytes);
        ids_.emplace(vocab, result);
      }
      out.merges.push_back({left, right, result, c.count});
      merged_.insert(c.key);
      apply(c.key, result);
    }
  }

 private:
  struct Lower {
    const std::vector<std::string>* tokens;
    // true when a ranks below b (std::priority_queue keeps the greatest on top).
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string& al = (*tokens)[key_left(a.key)];
      const std::string& bl = (*tokens)[key_left(b.key)];
      int cmp = al.compare(bl);
      if (cmp != 0) return cmp > 0;
      return (*tokens)[key_right(a.key)].compare((*tokens)[key_right(b.key)]) > 0;
    }
  };

  // Replaces (left, right) by `result` in every word holding it and updates the counts.
  void apply(uint64_t key, int32_t result) {
    const int32_t left = key_left(key), right = key_right(key);
    std::vector<uint32_t> list = std::move(where_[key]);
    where_.erase(key);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());

    std::vector<uint64_t> changed;
    std::vector<std::pair<uint64_t, int64_t>> delta;
    std::vector<int32_t> next;
    for (uint32_t w : list) {
      Word& word = words_[w];
      const auto& s = word.syms;
      next.clear();
      bool hit = false;
      for (std::size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          next.push_back(result);
          i += 2;
          hit = true;
        } else {
          next.push_back(s[i]);
          ++i;
        }
      }
      if (!hit) continue;  // the index is allowed to hold words that lost the pair
      delta.clear();
      for (std::size_t i = 0; i + 1 < s.size(); ++i) delta.push_back({pair_key(s[i], s[i + 1]), -word.count});
      for (std::size_t i = 0; i + 1 < next.size(); ++i) delta.push_back({pair_key(next[i], next[i + 1]), word.count});
      std::sort(delta.begin(), delta.end());
      for (std::size_t i = 0; i < delta.size();) {
        const uint64_t k = delta[i].first;
        int64_t sum = 0;
        for (; i < delta.size() && delta[i].first == k; ++i) sum += delta[i].second;
        if (sum == 0) continue;
        counts_[k] += sum;
        changed.push_back(k);
        if (sum > 0) where_[k].push_back(w);
      }
      word.syms.swap(next);
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t k : changed) {
      auto it = counts_.find(k);
      if (it->second <= 0) {
        counts_.erase(it);
      } else if (!merged_.count(k)) {
        heap_.push({it->second, k});
      }
    }
  }

  std::vector<Word> words_;
  std::vector<std::string>& tokens_;
  std::unordered_map<std::string, int32_t>& ids_;
  int32_t num_special_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
  std::unordered_set<uint64_t> merged_;
  std::priority_queue<Candidate, std::vector<Candidate>, Lower> heap_;
};

}  // namespace

std::string TrainedBpe::vocab_string(int64_t id) const {
  OT_REQUIRE(id >= 0 && id < static_cast<int64_t>(tokens.size()), "token id ", id,
             " is outside the trained vocabulary (", tokens.size(), " tokens)");
  const std::string& t = tokens[static_cast<std::size_t>(id)];
  return id < num_special ? t : byte_level(t);
}

std::vector<std::string> read_training_texts(const std::vector<std::string>& files,
                                             std::optional<uint64_t> max_bytes) {
  OT_REQUIRE(!files.empty(), "no training files given; expected at least one text file");
  std::vector<std::string> texts;
  uint64_t total = 0;
  for (const auto& f : files) {
    if (max_bytes && total >= *max_bytes) break;
    OT_REQUIRE(file_exists(f), f, ": no such file, expected a text file to train on");
    std::string text = read_text_file(f);
    const bool last = max_bytes && total + text.size() > *max_bytes;
    if (last) {
      std::size_t cut = static_cast<std::size_t>(*max_bytes - total);
      // Back off to the start of a UTF-8 character so no character is split.
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      text.resize(cut);
    }
    total += text.size();
    texts.push_back(std::move(text));
    if (last) break;
  }
  OT_REQUIRE(total > 0, "the training files (", files.front(), (files.size() > 1 ? ", ..." : ""),
             ") hold no text", (max_bytes ? " within max_bytes" : ""), "; expected some text to train on");
  return texts;
}

TrainedBpe train_byte_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options) {
  check_options(options);
  TrainedBpe out;
  out.num_special = static_cast<int64_t>(options.special_tokens.size());

  // Vocabulary strings (as vocab.json spells them) -> id, to find merges that reuse a token.
  std::unordered_map<std::string, int32_t> ids;
  for (const auto& s : options.special_tokens) {
    ids.emplace(s, static_cast<int32_t>(out.tokens.size()));
    out.tokens.push_back(s);
  }
  std::unordered_map<std::string, int64_t> byte_vocab;
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    ids.emplace(byte_level(raw), static_cast<int32_t>(out.tokens.size()));
    byte_vocab.emplace(byte_level(raw), b);
    out.tokens.push_back(raw);
  }

  // The pre-tokenizer is ByteBpeTokenizer's own, from a vocabulary of the bytes alone.
  ByteBpeTokenizer splitter(std::move(byte_vocab), {}, {}, "byte alphabet");
  std::unordered_map<std::string_view, int64_t> counts;
  std::vector<std::string> pieces;
  for (const auto& text : texts) {
    out.training_bytes += text.size();
    for_each_plain_piece(text, options.special_tokens, [&](std::string piece) { pieces.push_back(std::move(piece)); });
  }
  for (const auto& piece : pieces) {
    splitter.for_each_pre_token(piece, [&](const char* p, std::size_t n) {
      ++counts[std::string_view(p, n)];
      ++out.words;
    });
  }
  out.distinct_words = counts.size();

  // Words in byte order, so that the internal order never depends on hashing.
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  const auto offset = static_cast<int32_t>(out.num_special);
  for (const auto& [w, c] : sorted) {
    Word word{{}, c};
    word.syms.reserve(w.size());
    for (unsigned char b : w) word.syms.push_back(offset + b);
    words.push_back(std::move(word));
  }
  counts.clear();

  Trainer trainer(std::move(words), out.tokens, ids, offset);
  trainer.run(options.vocab_size, options.min_frequency, out);
  return out;
}

void write_byte_bpe(const TrainedBpe& bpe, const std::string& dir) {
  namespace fs = std::filesystem;
  using ojson = nlohmann::ordered_json;
  std::error_code ec;
  OT_REQUIRE(!fs::exists(dir, ec) || fs::is_directory(dir, ec), dir,
             ": exists and is not a directory; expected a directory for the tokenizer files");
  fs::create_directories(dir, ec);
  OT_REQUIRE(!ec, dir, ": cannot create the directory: ", ec.message());

  std::vector<std::string> vocab_strings(bpe.tokens.size());
  for (std::size_t i = 0; i < bpe.tokens.size(); ++i) vocab_strings[i] = bpe.vocab_string(static_cast<int64_t>(i));
  std::vector<std::string> merge_lines;
  merge_lines.reserve(bpe.merges.size());
  for (const auto& m : bpe.merges) merge_lines.push_back(vocab_strings[m.left] + " " + vocab_strings[m.right]);

  ojson vocab = ojson::object();
  for (std::size_t i = 0; i < vocab_strings.size(); ++i) vocab[vocab_strings[i]] = i;
  ojson added = ojson::array();
  for (int64_t i = 0; i < bpe.num_special; ++i)
    added.push_back({{"id", i},
                     {"content", bpe.tokens[static_cast<std::size_t>(i)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  ojson byte_level_opts = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", true}};
  ojson tok;
  tok["version"] = "1.0";
  tok["truncation"] = nullptr;
  tok["padding"] = nullptr;
  tok["added_tokens"] = added;
  tok["normalizer"] = nullptr;
  tok["pre_tokenizer"] = byte_level_opts;
  tok["post_processor"] = byte_level_opts;
  tok["decoder"] = byte_level_opts;
  tok["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", vocab},
                  {"merges", merge_lines}};

  std::string merges_txt = "#version: 0.2\n";
  for (const auto& line : merge_lines) merges_txt += line + "\n";

  ojson config;
  config["tokenizer_class"] = "GPT2Tokenizer";
  config["add_prefix_space"] = false;
  if (bpe.num_special > 0) {
    config["bos_token"] = bpe.tokens[0];
    config["eos_token"] = bpe.tokens[0];
  }
  if (bpe.num_special > 1) {
    ojson extra = ojson::array();
    for (int64_t i = 1; i < bpe.num_special; ++i) extra.push_back(bpe.tokens[static_cast<std::size_t>(i)]);
    config["additional_special_tokens"] = extra;
  }

  write_text_file_atomically(path_join(dir, "tokenizer.json"), tok.dump(2) + "\n");
  write_text_file_atomically(path_join(dir, "vocab.json"), vocab.dump(2) + "\n");
  write_text_file_atomically(path_join(dir, "merges.txt"), merges_txt);
  write_text_file_atomically(path_join(dir, "tokenizer_config.json"), config.dump(2) + "\n");
}

}  // namespace ot
