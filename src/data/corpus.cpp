// data/corpus.cpp: see corpus.h.
#include "data/corpus.h"

#include "util/hash.h"

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'O', 'T', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kVersion = 2;  // 2: ids_check

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t ids_check;
  uint64_t vocab_size;
  uint64_t tokenizer_hash;
  uint64_t source_hash;
  uint64_t source_size;
  uint64_t options_hash;
  uint64_t n_tokens;
};
static_assert(sizeof(Header) == 64, "token cache header must be 64 bytes");


// Every regular file of a tokenizer directory (sorted), or the one file: names and bytes.
uint64_t hash_tokenizer_files(const std::string& path) {
  std::vector<std::string> files;
  if (dir_exists(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file()) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  } else {
    OT_REQUIRE(file_exists(path), path, ": tokenizer path does not exist (CorpusOptions::tokenizer_path)");
    files.push_back(path);
  }
  uint64_t h = fnv1a("tokenizer", 9);
  for (const auto& f : files) {
    h = fnv1a(fs::path(f).filename().string(), h);
    const std::string bytes = read_text_file(f);
    h = fnv1a(bytes, h);
  }
  return h;
}

std::string resolve_format(const std::string& path, const std::string& format) {
  if (format == "text" || format == "jsonl") return format;
  OT_REQUIRE(format == "auto", "corpus format '", format, "' unknown, expected text, jsonl or auto");
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jsonl" ? "jsonl" : "text";
}

uint64_t hash_options(const std::string& format, const CorpusOptions& o) {
  std::string s = format + "\n" + (format == "jsonl" ? o.text_field : std::string()) + "\n" +
                  (o.prefix_id ? std::to_string(*o.prefix_id) : "-") + "\n" +
                  (o.separator_id ? std::to_string(*o.separator_id) : "-");
  return fnv1a(s, fnv1a("options", 7));
}

// Documents of the source: the whole text, or one per JSONL line.
std::vector<std::string> read_documents(const std::string& path, const std::string& text, const std::string& format,
                                        const std::string& field) {
  if (format == "text") return {text};
  std::vector<std::string> docs;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large
      fail(path, ":", line_no, ": not valid JSON (", e.what(), "), expected one JSON object per line");
    }
    OT_REQUIRE(r.is_object(), path, ":", line_no, ": expected a JSON object, got ", r.type_name());
    auto it = r.find(field);
    OT_REQUIRE(it != r.end(), path, ":", line_no, ": key '", field, "' missing, expected the document text");
    OT_REQUIRE(it->is_string(), path, ":", line_no, ": key '", field, "': expected a string, got ",
               it->type_name());
    docs.push_back(it->get<std::string>());
  }
  return docs;
}

uint32_t ids_check(const char* data, size_t n) {
  const uint64_t h = fnv1a(data, n, fnv1a("ids", 3));
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// Returns "" when the cache matches `want`, else why it does not.
std::string check_cache(const std::string& cache, const Header& want, std::vector<int32_t>* ids) {
  if (!file_exists(cache)) return "no cache file";
  const std::vector<char> bytes = read_binary_file(cache);
  if (bytes.size() < sizeof(Header)) return "truncated header";
  Header h;
  std::memcpy(&h, bytes.data(), sizeof(Header));
  if (std::memcmp(h.magic, kMagic, 8) != 0) return "bad magic";
  if (h.version != kVersion) return "version " + std::to_string(h.version);
  if (h.vocab_size != want.vocab_size) return "vocabulary size changed";
  if (h.tokenizer_hash != want.tokenizer_hash) return "tokenizer files changed";
  if (h.source_size != want.source_size || h.source_hash != want.source_hash) return "source changed";
  if (h.options_hash != want.options_hash) return "options changed";
  if (bytes.size() != sizeof(Header) + h.n_tokens * sizeof(int32_t)) return "size does not match its token count";
  if (h.ids_check != ids_check(bytes.data() + sizeof(Header), bytes.size() - sizeof(Header)))
    return "damaged (checksum of its ids does not match)";
  ids->resize(static_cast<size_t>(h.n_tokens));
  std::memcpy(ids->data(), bytes.data() + sizeof(Header), ids->size() * sizeof(int32_t));
  for (int32_t id : *ids)
    if (id < 0 || static_cast<uint64_t>(id) >= h.vocab_size) {
      ids->clear();
      return "damaged (token id " + std::to_string(id) + " outside the vocabulary)";
    }
  return "";
}

}  // namespace

std::vector<int32_t> tokenize_documents(const std::vector<std::string>& docs, const Tokenizer& tok,
                                        std::optional<int64_t> prefix_id, std::optional<int64_t> separator_id) {
  std::vector<int32_t> out;
  const int64_t V = tok.vocab_size();
  auto push = [&](int64_t id) {
    OT_REQUIRE(id >= 0 && id < V && id <= INT32_MAX, "token id ", id, " outside the vocabulary [0, ", V, ")");
    out.push_back(static_cast<int32_t>(id));
  };
  for (const auto& d : docs) {
    if (prefix_id) push(*prefix_id);
    for (int64_t id : tok.encode(d)) push(id);
    if (separator_id) push(*separator_id);
  }
  return out;
}

std::string corpus_cache_path(const std::string& path, const std::string& cache_dir) {
  std::error_code ec;
  std::string abs = fs::absolute(path, ec).lexically_normal().string();
  if (ec) abs = path;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(abs, fnv1a("path", 4))));
  return path_join(cache_dir, fs::path(path).filename().string() + "." + std::string(hex, 8) + ".tokens");
}

CorpusTokens load_corpus_tokens(const std::string& path, const Tokenizer& tok, const CorpusOptions& opts) {
  const std::string format = resolve_format(path, opts.format);
  const std::string text = read_text_file(path);
  CorpusTokens out;
  out.cache_status = "none";
  Header want{};
  if (!opts.cache_dir.empty()) {
    OT_REQUIRE(!opts.tokenizer_path.empty(), path,
               ": a token cache needs CorpusOptions::tokenizer_path (its files are part of the cache key)");
    std::memcpy(want.magic, kMagic, 8);
    want.version = kVersion;
    want.vocab_size = static_cast<uint64_t>(tok.vocab_size());
    want.tokenizer_hash = hash_tokenizer_files(opts.tokenizer_path);
    want.source_hash = fnv1a(text, fnv1a("source", 6));
    want.source_size = text.size();
    want.options_hash = hash_options(format, opts);
    out.cache_path = corpus_cache_path(path, opts.cache_dir);
    const std::string why = check_cache(out.cache_path, want, &out.ids);
    if (why.empty()) {
      out.cache_status = "hit";
      return out;
    }
    out.cache_status = why == "no cache file" ? "built" : "rebuilt: " + why;
  }
  const auto docs = read_documents(path, text, format, opts.text_field);
  out.documents = static_cast<int64_t>(docs.size());
  out.ids = tokenize_documents(docs, tok, opts.prefix_id, opts.separator_id);
  if (!opts.cache_dir.empty()) {
    fs::create_directories(opts.cache_dir);
    want.n_tokens = out.ids.size();
    want.ids_check = ids_check(reinterpret_cast<const char*>(out.ids.data()), out.ids.size() * sizeof(int32_t));
    write_file_atomically(out.cache_path, [&](const std::string& tmp) {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      OT_REQUIRE(f.good(), tmp, ": cannot create the token cache");
      f.write(reinterpret_cast<const char*>(&want), sizeof want);
      f.write(reinterpret_cast<const char*>(out.ids.data()),
              static_cast<std::streamsize>(out.ids.size() * sizeof(int32_t)));
      f.flush();
      OT_REQUIRE(f.good(), out.cache_path, ": cannot write the token cache (", errno ? std::strerror(errno) : "write failed",
                 ")");
    });
  }
  return out;
}

std::vector<std::pair<int64_t, int64_t>> group_texts(int64_t n_tokens, int64_t block_size) {
  OT_REQUIRE(block_size > 0, "group_texts: block_size must be positive, got ", block_size);
  std::vector<std::pair<int64_t, int64_t>> blocks;
  if (n_tokens <= 0) return blocks;
  if (n_tokens < block_size) return {{0, n_tokens}};
  for (int64_t off = 0; off + block_size <= n_tokens; off += block_size) blocks.emplace_back(off, block_size);
  return blocks;
}

LmBlockSource::LmBlockSource(std::shared_ptr<const std::vector<int32_t>> ids, int64_t block_size)
    : ids_(std::move(ids)), block_size_(block_size) {
  OT_REQUIRE(ids_ != nullptr, "LM blocks: no token ids");
  blocks_ = group_texts(static_cast<int64_t>(ids_->size()), block_size);
  OT_REQUIRE(!blocks_.empty(), "LM blocks: the corpus has no tokens");
}

Batch LmBlockSource::batch(const std::vector<int64_t>& indices) const {
  OT_REQUIRE(!indices.empty(), "LM blocks: empty batch");
  const int64_t B = static_cast<int64_t>(indices.size());
  const int64_t T = blocks_.front().second;  // all blocks share one length
  auto input = at::empty({B, T}, at::kLong);  // (B, T)
  auto a = input.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t i = indices[static_cast<size_t>(r)];
    OT_REQUIRE(i >= 0 && i < size(), "LM blocks: block ", i, " outside [0, ", size(), ")");
    const int64_t off = blocks_[static_cast<size_t>(i)].first;
    for (int64_t t = 0; t < T; ++t) a[r][t] = (*ids_)[static_cast<size_t>(off + t)];
  }
  Batch b;
  b.input_ids = input;
  b.labels = input.clone();  // the model shifts; same ids as labels
  b.tokens = B * T;
  return b;
}

}  // namespace ot
