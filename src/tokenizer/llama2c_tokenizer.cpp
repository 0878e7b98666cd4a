// tokenizer/llama2c_tokenizer.cpp: implementation of Llama2cTokenizer (see the header).
#include "tokenizer/llama2c_tokenizer.h"

#include "tokenizer/pair_merge.h"

#include <cmath>
#include <cstring>

#include "util/error.h"
#include "util/fs.h"

namespace ot {

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::from_file(const std::string& path) {
  std::string data = read_text_file(path);
  std::unique_ptr<Llama2cTokenizer> t(new Llama2cTokenizer());
  t->source_ = path;
  auto read_i32 = [&](std::size_t off) {
    int32_t v;
    std::memcpy(&v, data.data() + off, 4);
    return v;
  };
  OT_REQUIRE(data.size() >= 4, path, ": truncated llama2.c tokenizer: ", data.size(),
             " bytes, expected at least a 4-byte int32 max_token_length header");
  int32_t max_len = read_i32(0);
  OT_REQUIRE(max_len > 0 && max_len < (1 << 20), path, ": max_token_length is ", max_len,
             ", expected a positive int32 (is this a llama2.c tokenizer.bin?)");
  t->max_token_length_ = max_len;
  std::size_t off = 4;
  while (off < data.size()) {
    const std::size_t id = t->pieces_.size();
    OT_REQUIRE(data.size() - off >= 8, path, ": truncated at byte ", off, " (token ", id,
               "): expected float32 score + int32 length, only ", data.size() - off, " bytes left");
    float score;
    std::memcpy(&score, data.data() + off, 4);
    int32_t len = read_i32(off + 4);
    off += 8;
    OT_REQUIRE(len >= 0 && len <= max_len, path, ": token ", id, " at byte ", off - 4, " has length ",
               len, ", expected 0..", max_len, " (max_token_length)");
    OT_REQUIRE(data.size() - off >= static_cast<std::size_t>(len), path, ": truncated at byte ", off,
               " (token ", id, "): expected ", len, " bytes of text, only ", data.size() - off, " left");
    t->pieces_.emplace_back(data.data() + off, static_cast<std::size_t>(len));
    t->scores_.push_back(score);
    off += static_cast<std::size_t>(len);
  }
  OT_REQUIRE(!t->pieces_.empty(), path, ": no tokens after the header, expected a vocabulary");
  t->index_.reserve(t->pieces_.size() * 2);
  for (std::size_t i = 0; i < t->pieces_.size(); ++i)
    t->index_.emplace(t->pieces_[i], static_cast<int32_t>(i));
  return t;
}

int64_t Llama2cTokenizer::lookup(const std::string& s) const {
  auto it = index_.find(s);
  return it == index_.end() ? -1 : it->second;
}

void Llama2cTokenizer::check_id(int64_t id) const {
  OT_REQUIRE(id >= 0 && id < vocab_size(), source_, ": token id ", id,
             " is outside the vocabulary (", vocab_size(), " ids)");
}

const std::string& Llama2cTokenizer::piece(int64_t id) const {
  check_id(id);
  return pieces_[static_cast<std::size_t>(id)];
}

float Llama2cTokenizer::score(int64_t id) const {
  check_id(id);
  return scores_[static_cast<std::size_t>(id)];
}

std::vector<int64_t> Llama2cTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int64_t> tokens;
  if (add_bos) tokens.push_back(kBos);

  // Symbols (ids) before merging.
  std::vector<int32_t> syms;
  syms.reserve(text.size() + 1);
  auto push_bytes = [&](const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      int64_t id = static_cast<unsigned char>(p[i]) + 3;
      OT_REQUIRE(id < vocab_size(), source_, ": byte fallback needs id ", id, " (<0x",
                 "..> tokens at 3..258), but the vocabulary has only ", vocab_size(), " ids");
      syms.push_back(static_cast<int32_t>(id));
    }
  };
  if (!text.empty()) {
    // The sentencepiece dummy prefix.
    int64_t sp = lookup(" ");
    if (sp >= 0) syms.push_back(static_cast<int32_t>(sp));
    else push_bytes(" ", 1);
  }
  // run.c's grouping: a non-continuation byte starts a new character; continuation bytes
  // are appended while fewer than 4 bytes are collected.
  std::string buf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();
    buf.push_back(static_cast<char>(c));
    bool next_is_cont = i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
    if (next_is_cont && buf.size() < 4) continue;
    int64_t id = lookup(buf);
    if (id >= 0) syms.push_back(static_cast<int32_t>(id));
    else push_bytes(buf.data(), buf.size());
    buf.clear();
  }

  // Merging. run.c rescans all pairs each round and merges the highest score (first on
  // ties); merge_pairs visits the same pairs in the same order with priority = -score.
  std::string pair;
  auto merge_of = [&](int32_t left, int32_t right) -> std::optional<detail::PairMerge> {
    pair = pieces_[static_cast<std::size_t>(left)];
    pair += pieces_[static_cast<std::size_t>(right)];
    int64_t id = lookup(pair);
    if (id < 0) return std::nullopt;
    float s = scores_[static_cast<std::size_t>(id)];
    if (!(s > -1e10f)) return std::nullopt;  // run.c starts from best_score = -1e10 and needs '>'
    return detail::PairMerge{-double(s), static_cast<int32_t>(id)};
  };
  for (int32_t id : detail::merge_pairs(syms, merge_of)) tokens.push_back(id);
  return tokens;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string Llama2cTokenizer::decode_piece(int64_t prev, int64_t id) const {
  const std::string& p = piece(id);
  std::size_t start = (prev == kBos && !p.empty() && p[0] == ' ') ? 1 : 0;
  // Raw-byte pieces look like "<0x0A>".
  if (p.size() - start == 6 && p.compare(start, 3, "<0x") == 0 && p[start + 5] == '>') {
    int hi = hex_value(p[start + 3]), lo = hex_value(p[start + 4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  return p.substr(start);
}

std::string Llama2cTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  int64_t prev = -1;
  for (int64_t id : ids) {
    check_id(id);
    if (id != kBos && id != kEos) out += decode_piece(prev, id);
    prev = id;
  }
  return out;
}

}  // namespace ot
