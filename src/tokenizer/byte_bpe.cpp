// tokenizer/byte_bpe.cpp: implementation of ByteBpeTokenizer (see byte_bpe.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/byte_bpe.h"

#include "tokenizer/pair_merge.h"

#include <pcre2.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using json = nlohmann::json;

// Python `regex`'s \s for str patterns is exactly the Unicode White_Space property. PCRE2's
// UCP \s differs slightly (it adds U+180E), so the set is spelled out instead of \s.
constexpr const char* kWhiteSpace =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string gpt2_pattern() {
  const std::string ws = kWhiteSpace;
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws +
         "]+(?![^" + ws + "])|[" + ws + "]+";
}

constexpr std::size_t kCacheLimit = 1 << 16;  // entries; the cache is cleared when full
constexpr std::size_t kCacheMaxWord = 128;    // longer words are not worth caching

std::string hex_byte(unsigned b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

}  // namespace

const std::vector<uint32_t>& gpt2_byte_to_unicode() {
  static const std::vector<uint32_t> table = [] {
    // Printable Latin-1 bytes map to themselves; the others are shifted to U+0100 and up,
    // in byte order, so every byte gets a visible, non-whitespace character.
    std::vector<uint32_t> t(256, 0);
    std::vector<bool> keep(256, false);
    for (unsigned b = '!'; b <= '~'; ++b) keep[b] = true;
    for (unsigned b = 0xA1; b <= 0xAC; ++b) keep[b] = true;
    for (unsigned b = 0xAE; b <= 0xFF; ++b) keep[b] = true;
    uint32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) t[b] = keep[b] ? b : next++;
    return t;
  }();
  return table;
}

// ---- the pre-tokenizer regex ----
struct ByteBpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

ByteBpeTokenizer::~ByteBpeTokenizer() = default;

ByteBpeTokenizer::ByteBpeTokenizer(std::unordered_map<std::string, int64_t> vocab,
                                   const std::vector<std::pair<std::string, std::string>>& merges,
                                   std::vector<AddedToken> added, const std::string& source,
                                   bool add_prefix_space)
    : source_(source), vocab_(std::move(vocab)), add_prefix_space_(add_prefix_space) {
  // Inverse of the byte alphabet, to turn vocabulary strings back into raw bytes.
  const auto& b2u = gpt2_byte_to_unicode();
  std::unordered_map<uint32_t, unsigned char> u2b;
  for (unsigned b = 0; b < 256; ++b) u2b[b2u[b]] = static_cast<unsigned char>(b);

  int64_t max_id = -1;
  for (const auto& [tok, id] : vocab_) {
    OT_REQUIRE(id >= 0 && id < (int64_t{1} << 31), source_, ": token '", tok, "' has id ", id,
               ", expected 0 <= id < 2^31");
    max_id = std::max(max_id, id);
  }
  for (const auto& a : added) {
    OT_REQUIRE(a.id >= 0 && a.id < (int64_t{1} << 31), source_, ": added token '", a.content,
               "' has id ", a.id, ", expected 0 <= id < 2^31");
    max_id = std::max(max_id, a.id);
  }
  OT_REQUIRE(max_id >= 0, source_, ": the vocabulary is empty");
  id_to_bytes_.assign(static_cast<std::size_t>(max_id + 1), std::string());
  id_known_.assign(id_to_bytes_.size(), false);
  for (const auto& [tok, id] : vocab_) {
    std::string raw;
    utf8::for_each_code_point(tok, [&](uint32_t cp, const char* p, std::size_t n) {
      auto it = u2b.find(cp);
      // Characters outside the byte alphabet are kept as their own UTF-8 bytes.
      if (it != u2b.end()) raw.push_back(static_cast<char>(it->second));
      else raw.append(p, n);
    });
    id_to_bytes_[id] = std::move(raw);
    id_known_[id] = true;
  }

  for (unsigned b = 0; b < 256; ++b) {
    auto it = vocab_.find(utf8::encode(b2u[b]));
    OT_REQUIRE(it != vocab_.end(), source_, ": the vocabulary lacks the byte-level symbol for byte ",
               hex_byte(b), " ('", utf8::encode(b2u[b]), "'), expected all 256 byte symbols");
    byte_id_[b] = static_cast<int32_t>(it->second);
  }

  merges_.reserve(merges.size() * 2);
  for (std::size_t r = 0; r < merges.size(); ++r) {
    // Plain references, not a structured binding: lambdas may not capture those in C++17.
    const std::string& a = merges[r].first;
    const std::string& b = merges[r].second;
    auto lookup = [&](const std::string& t) {
      auto it = vocab_.find(t);
      OT_REQUIRE(it != vocab_.end(), source_, ": merge #", r + 1, " ('", a, " ", b, "'): token '", t,
                 "' is not in the vocabulary");
      return static_cast<int32_t>(it->second);
    };
    int32_t ia = lookup(a), ib = lookup(b), im = lookup(a + b);
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia)) << 32) | static_cast<uint32_t>(ib);
    merges_.emplace(key, Merge{static_cast<int32_t>(r), im});  // keeps the first (lowest rank)
  }

  for (auto& a : added) {
    if (a.content.empty()) continue;
    id_to_bytes_[a.id] = a.content;
    id_known_[a.id] = true;
    if (a.content == "<|endoftext|>" || a.content == "</s>") eos_ = a.id;
    added_.push_back(a);
  }
  // Longest first so that at equal positions the longest added token wins.
  std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& x, const AddedToken& y) {
    return x.content.size() > y.content.size();
  });

  regex_ = std::make_unique<Regex>();
  std::string pattern = gpt2_pattern();
  int err = 0;
  PCRE2_SIZE err_off = 0;
  regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                               PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    fail("internal: cannot compile the GPT-2 pre-tokenizer regex: ", reinterpret_cast<char*>(buf));
  }
  // JIT is an optimisation only; without it the interpreter gives the same matches.
  (void)pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);
}

// ---- loading ----
namespace {

json parse_json_file(const std::string& path) {
  std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large
    fail(path, ": invalid JSON: ", e.what());
  }
}

std::unordered_map<std::string, int64_t> vocab_from_json(const json& v, const std::string& path,
                                                         const std::string& key) {
  OT_REQUIRE(v.is_object(), path, ": ", key, ": expected a JSON object mapping token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    OT_REQUIRE(it.value().is_number_integer(), path, ": ", key, "['", it.key(),
               "']: expected an integer id, found ", it.value().dump());
    vocab.emplace(it.key(), it.value().get<int64_t>());
  }
  return vocab;
}

// "a b" -> {"a", "b"}; exactly one space separates the two tokens.
bool split_merge_line(const std::string& line, std::pair<std::string, std::string>& out) {
  auto sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size()) return false;
  if (line.find(' ', sp + 1) != std::string::npos) return false;
  out = {line.substr(0, sp), line.substr(sp + 1)};
  return true;
}

}  // namespace

std::unique_ptr<ByteBpeTokenizer> ByteBpeTokenizer::from_tokenizer_json(const std::string& path) {
  json j = parse_json_file(path);
  OT_REQUIRE(j.is_object(), path, ": expected a JSON object at the top level (HF tokenizer.json)");
  OT_REQUIRE(j.contains("model") && j["model"].is_object(), path,
             ": key 'model': expected an object (HF tokenizer.json)");
  const json& model = j["model"];
  std::string type = model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>()
                                                                         : std::string("BPE");
  OT_REQUIRE(type == "BPE", path, ": model.type is '", type, "', expected 'BPE'");

  // Only byte-level BPE is implemented: refuse other pre-tokenizers rather than guess.
  bool add_prefix_space = false;
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    const json& pt = j["pre_tokenizer"];
    std::string pt_type = pt.is_object() && pt.contains("type") ? pt["type"].dump() : pt.dump();
    OT_REQUIRE(pt.is_object() && pt.value("type", "") == "ByteLevel", path,
               ": pre_tokenizer.type is ", pt_type, ", expected \"ByteLevel\" (GPT-2 style byte-level BPE)");
    OT_REQUIRE(pt.value("use_regex", true), path,
               ": pre_tokenizer.use_regex is false, expected true (GPT-2 pre-tokenizer regex)");
    add_prefix_space = pt.value("add_prefix_space", false);
  } else {
    fail(path, ": key 'pre_tokenizer' is missing, expected a ByteLevel pre-tokenizer");
  }

  OT_REQUIRE(model.contains("vocab"), path, ": key 'model.vocab' is missing");
  auto vocab = vocab_from_json(model["vocab"], path, "model.vocab");

  std::vector<std::pair<std::string, std::string>> merges;
  if (model.contains("merges")) {
    const json& m = model["merges"];
    OT_REQUIRE(m.is_array(), path, ": model.merges: expected an array");
    merges.reserve(m.size());
    for (std::size_t i = 0; i < m.size(); ++i) {
      const json& e = m[i];
      std::pair<std::string, std::string> pair;
      if (e.is_string()) {
        OT_REQUIRE(split_merge_line(e.get<std::string>(), pair), path, ": model.merges[", i, "] = ",
                   e.dump(), ": expected two tokens separated by one space");
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        pair = {e[0].get<std::string>(), e[1].get<std::string>()};
      } else {
        fail(path, ": model.merges[", i, "] = ", e.dump(),
             ": expected \"a b\" or [\"a\", \"b\"]");
      }
      merges.push_back(std::move(pair));
    }
  }

  std::vector<AddedToken> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& at = j["added_tokens"];
    OT_REQUIRE(at.is_array(), path, ": added_tokens: expected an array");
    for (std::size_t i = 0; i < at.size(); ++i) {
      const json& e = at[i];
      OT_REQUIRE(e.is_object() && e.contains("id") && e["id"].is_number_integer() &&
                     e.contains("content") && e["content"].is_string(),
                 path, ": added_tokens[", i, "]: expected an object with integer 'id' and string 'content'");
      added.push_back({e["content"].get<std::string>(), e["id"].get<int64_t>(), e.value("special", false)});
    }
  }
  return std::make_unique<ByteBpeTokenizer>(std::move(vocab), merges, std::move(added), path,
                                            add_prefix_space);
}

std::unique_ptr<ByteBpeTokenizer> ByteBpeTokenizer::from_vocab_and_merges(
    const std::string& vocab_path, const std::string& merges_path) {
  auto vocab = vocab_from_json(parse_json_file(vocab_path), vocab_path, "top level");
  std::string text = read_text_file(merges_path);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(text);
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
    if (line.empty()) continue;
    std::pair<std::string, std::string> pair;
    OT_REQUIRE(split_merge_line(line, pair), merges_path, ":", line_no, ": bad merge line '", line,
               "': expected two tokens separated by one space");
    merges.push_back(std::move(pair));
  }
  std::vector<AddedToken> added;
  auto eot = vocab.find("<|endoftext|>");
  if (eot != vocab.end()) added.push_back({eot->first, eot->second, true});
  return std::make_unique<ByteBpeTokenizer>(std::move(vocab), merges, std::move(added),
                                            vocab_path + " + " + merges_path);
}

// ---- encoding ----

// Calls fn(ptr, size) for every pre-tokenizer word of `text` (no special tokens here).
template <class Fn>
void ByteBpeTokenizer::for_each_word(const std::string& text, Fn&& fn) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  OT_REQUIRE(md != nullptr, "out of memory creating PCRE2 match data");
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } guard{md};

  const char* base = text.data();
  const std::size_t n = text.size();
  std::size_t pos = 0;
  while (pos < n) {
    // The maximal valid UTF-8 run starting at pos; bytes outside runs are words alone.
    std::size_t end = pos;
    while (end < n) {
      std::size_t len = utf8::valid_sequence_length(base + end, n - end);
      if (len == 0) break;
      end += len;
    }
    if (end == pos) {
      fn(base + pos, 1);
      ++pos;
      continue;
    }
    // Match within [pos, end) only: the subject is the run, so lookaheads stop at its end.
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(base + pos);
    const std::size_t len = end - pos;
    std::size_t off = 0;
    while (off < len) {
      int rc = pcre2_match(regex_->code, subject, len, off, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) {
        // Cannot happen (the alternatives cover every character); keep the rest as one word.
        fn(base + pos + off, len - off);
        break;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[0] > off) fn(base + pos + off, ov[0] - off);
      if (ov[1] <= ov[0]) {  // empty match: cannot happen either; step one character
        std::size_t step = utf8::valid_sequence_length(base + pos + ov[0], len - ov[0]);
        fn(base + pos + ov[0], step ? step : 1);
        off = ov[0] + (step ? step : 1);
        continue;
      }
      fn(base + pos + ov[0], ov[1] - ov[0]);
      off = ov[1];
    }
    pos = end;
  }
}

std::vector<std::string> ByteBpeTokenizer::pre_tokenize(const std::string& text) const {
  std::vector<std::string> words;
  for_each_word(text, [&](const char* p, std::size_t n) { words.emplace_back(p, n); });
  return words;
}

void ByteBpeTokenizer::for_each_pre_token(const std::string& text,
                                          const std::function<void(const char*, std::size_t)>& fn) const {
  for_each_word(text, fn);
}

int64_t ByteBpeTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void ByteBpeTokenizer::bpe(const char* data, std::size_t size, std::vector<int64_t>& out) const {
  if (size == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(data[0])]);
    return;
  }
  // Lowest rank first and, within one rank, left to right: the same result as GPT-2's loop.
  std::vector<int32_t> ids(size);
  for (std::size_t i = 0; i < size; ++i) ids[i] = byte_id_[static_cast<unsigned char>(data[i])];
  auto merge_of = [&](int32_t left, int32_t right) -> std::optional<detail::PairMerge> {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    auto it = merges_.find(key);
    if (it == merges_.end()) return std::nullopt;
    return detail::PairMerge{double(it->second.rank), it->second.id};
  };
  for (int32_t id : detail::merge_pairs(ids, merge_of)) out.push_back(id);
}

void ByteBpeTokenizer::encode_word(const char* data, std::size_t size, std::vector<int64_t>& out) const {
  if (size > kCacheMaxWord) {
    bpe(data, size, out);
    return;
  }
  thread_local std::string key;
  key.assign(data, size);
  {
    std::shared_lock<std::shared_mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::size_t first = out.size();
  bpe(data, size, out);
  std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  std::unique_lock<std::shared_mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(key, std::move(ids));
}

void ByteBpeTokenizer::encode_plain(const std::string& text, std::vector<int64_t>& out) const {
  if (text.empty()) return;
  if (add_prefix_space_ && text[0] != ' ') {
    std::string spaced = " " + text;
    for_each_word(spaced, [&](const char* p, std::size_t n) { encode_word(p, n, out); });
    return;
  }
  for_each_word(text, [&](const char* p, std::size_t n) { encode_word(p, n, out); });
}

std::vector<int64_t> ByteBpeTokenizer::encode(const std::string& text, bool add_bos) const {
  (void)add_bos;  // byte-level BPE (GPT-2) has no BOS of its own
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 1);
  if (added_.empty() || split_special_) {
    encode_plain(text, out);
    return out;
  }
  // Split on added tokens: the earliest occurrence wins, the longest at equal positions.
  std::vector<std::size_t> next(added_.size());
  for (std::size_t k = 0; k < added_.size(); ++k) next[k] = text.find(added_[k].content);
  std::size_t pos = 0;
  while (true) {
    std::size_t best = std::string::npos, best_k = 0;
    for (std::size_t k = 0; k < added_.size(); ++k) {
      if (next[k] != std::string::npos && next[k] < pos) next[k] = text.find(added_[k].content, pos);
      if (next[k] < best) {
        best = next[k];
        best_k = k;
      }
    }
    if (best == std::string::npos) {
      encode_plain(text.substr(pos), out);
      break;
    }
    encode_plain(text.substr(pos, best - pos), out);
    out.push_back(added_[best_k].id);
    pos = best + added_[best_k].content.size();
  }
  return out;
}

std::string ByteBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    OT_REQUIRE(id >= 0 && id < vocab_size() && id_known_[static_cast<std::size_t>(id)], source_,
               ": token id ", id, " is outside the vocabulary (", vocab_size(), " ids)");
    out += id_to_bytes_[static_cast<std::size_t>(id)];
  }
  return out;
}

}  // namespace ot
