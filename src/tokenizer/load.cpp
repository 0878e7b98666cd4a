// tokenizer/load.cpp: load_tokenizer(), which picks the tokenizer implementation from a
// file name or from the files present in a directory (see tokenizer.h).
#include <algorithm>
#include <filesystem>

#include "tokenizer/byte_bpe.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ot {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLookedFor =
    "tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe, tokenizer.model, "
    "tokenizer.bin or tok*.bin";

std::unique_ptr<Tokenizer> bpe_pair(const std::string& vocab, const std::string& merges) {
  OT_REQUIRE(file_exists(vocab), vocab, ": no such file (needed together with ", merges, ")");
  OT_REQUIRE(file_exists(merges), merges, ": no such file (needed together with ", vocab, ")");
  return ByteBpeTokenizer::from_vocab_and_merges(vocab, merges);
}

std::unique_ptr<Tokenizer> load_dir(const std::string& dir) {
  auto in = [&](const char* name) { return path_join(dir, name); };
  if (file_exists(in("tokenizer.json"))) return ByteBpeTokenizer::from_tokenizer_json(in("tokenizer.json"));
  if (file_exists(in("vocab.json")) && file_exists(in("merges.txt")))
    return bpe_pair(in("vocab.json"), in("merges.txt"));
  if (file_exists(in("encoder.json")) && file_exists(in("vocab.bpe")))
    return bpe_pair(in("encoder.json"), in("vocab.bpe"));
  if (file_exists(in("tokenizer.model"))) return SentencePieceTokenizer::from_file(in("tokenizer.model"));
  if (file_exists(in("tokenizer.bin"))) return Llama2cTokenizer::from_file(in("tokenizer.bin"));
  // llama2.c model folders name the vocabulary e.g. tok512.bin next to the model .bin.
  std::vector<std::string> toks;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file(ec) && name.rfind("tok", 0) == 0 && ends_with(name, ".bin")) toks.push_back(name);
  }
  std::sort(toks.begin(), toks.end());
  OT_REQUIRE(toks.size() <= 1, dir, ": several llama2.c tokenizers (", toks.front(), ", ", toks[1],
             "); pass the file itself");
  if (toks.size() == 1) return Llama2cTokenizer::from_file(in(toks[0].c_str()));
  fail(dir, ": no tokenizer found in this directory; looked for ", kLookedFor);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (dir_exists(path)) return load_dir(path);
  OT_REQUIRE(file_exists(path), path, ": no such file or directory, expected a tokenizer file or a "
             "directory holding one of ", kLookedFor);
  const fs::path p(path);
  const std::string name = p.filename().string();
  const std::string dir = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
  if (name == "vocab.json") return bpe_pair(path, path_join(dir, "merges.txt"));
  if (name == "merges.txt") return bpe_pair(path_join(dir, "vocab.json"), path);
  if (name == "encoder.json") return bpe_pair(path, path_join(dir, "vocab.bpe"));
  if (name == "vocab.bpe") return bpe_pair(path_join(dir, "encoder.json"), path);
  if (ends_with(name, ".json")) return ByteBpeTokenizer::from_tokenizer_json(path);
  if (ends_with(name, ".model")) return SentencePieceTokenizer::from_file(path);
  if (ends_with(name, ".bin")) return Llama2cTokenizer::from_file(path);
  fail(path, ": unrecognised tokenizer file name; expected ", kLookedFor,
       " (or any *.json = HF tokenizer.json, *.model = sentencepiece, *.bin = llama2.c)");
}

int copy_tokenizer_files(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  OT_REQUIRE(fs::is_directory(to, ec), to, ": not a directory");
  std::vector<fs::path> files;
  if (fs::is_regular_file(from, ec)) {
    files.push_back(from);
  } else if (fs::is_directory(from, ec)) {
    for (const char* name : {"tokenizer.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe",
                             "tokenizer.model", "tokenizer.bin", "tokenizer_config.json", "special_tokens_map.json"}) {
      fs::path p = fs::path(from) / name;
      if (fs::is_regular_file(p, ec)) files.push_back(p);
    }
  }
  for (const auto& f : files) {
    fs::copy_file(f, fs::path(to) / f.filename(), fs::copy_options::overwrite_existing, ec);
    OT_REQUIRE(!ec, f.string(), ": cannot copy into ", to, ": ", ec.message());
  }
  return static_cast<int>(files.size());
}

}  // namespace ot
