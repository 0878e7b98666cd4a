// tokenizer/sentencepiece_tokenizer.cpp: implementation of SentencePieceTokenizer: loads
// libot_spm_shim.so with dlopen and calls its C interface.
#include "tokenizer/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "tokenizer/sentencepiece_shim/spm_shim.h"
#include "util/error.h"
#include "util/fs.h"

#ifndef OT_SPM_SHIM_PATH
#define OT_SPM_SHIM_PATH "libot_spm_shim.so"
#endif

namespace ot {
namespace {

struct ShimApi {
  decltype(&ot_spm_load) load = nullptr;
  decltype(&ot_spm_free) free = nullptr;
  decltype(&ot_spm_piece_size) piece_size = nullptr;
  decltype(&ot_spm_bos_id) bos_id = nullptr;
  decltype(&ot_spm_eos_id) eos_id = nullptr;
  decltype(&ot_spm_piece) piece = nullptr;
  decltype(&ot_spm_encode) encode = nullptr;
  decltype(&ot_spm_decode) decode = nullptr;
};

const ShimApi& shim() {
  static ShimApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    // Search order: $OT_SPM_SHIM, next to the running executable (installed copies,
    // containers), then the build tree's copy.
    const char* env = std::getenv("OT_SPM_SHIM");
    std::string path = env && *env ? env : OT_SPM_SHIM_PATH;
    if (!(env && *env)) {
      char exe[4096];
      ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
      if (n > 0) {
        std::string dir(exe, static_cast<size_t>(n));
        std::string beside = dir.substr(0, dir.rfind('/') + 1) + "libot_spm_shim.so";
        if (::access(beside.c_str(), R_OK) == 0) path = beside;
      }
    }
    // RTLD_LOCAL keeps sentencepiece's protobuf copy out of the global namespace;
    // RTLD_DEEPBIND makes sentencepiece bind to its own copy, not LibTorch's libprotobuf.
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      error = "cannot load the sentencepiece shim library " + path + " (" + (why ? why : "?") +
              "); set OT_SPM_SHIM to the path of libot_spm_shim.so";
      return;
    }
    auto sym = [&](const char* name) {
      void* p = ::dlsym(lib, name);
      if (p == nullptr && error.empty()) error = path + ": missing symbol " + name;
      return p;
    };
    api.load = reinterpret_cast<decltype(api.load)>(sym("ot_spm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(sym("ot_spm_free"));
    api.piece_size = reinterpret_cast<decltype(api.piece_size)>(sym("ot_spm_piece_size"));
    api.bos_id = reinterpret_cast<decltype(api.bos_id)>(sym("ot_spm_bos_id"));
    api.eos_id = reinterpret_cast<decltype(api.eos_id)>(sym("ot_spm_eos_id"));
    api.piece = reinterpret_cast<decltype(api.piece)>(sym("ot_spm_piece"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("ot_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("ot_spm_decode"));
  });
  OT_REQUIRE(error.empty(), error);
  return api;
}

}  // namespace

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_ != nullptr) shim().free(handle_);
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  OT_REQUIRE(file_exists(path), path, ": no such file, expected a sentencepiece tokenizer.model");
  const ShimApi& api = shim();
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->source_ = path;
  char err[512] = {0};
  t->handle_ = api.load(path.c_str(), err, sizeof err);
  OT_REQUIRE(t->handle_ != nullptr, path, ": cannot load sentencepiece model: ", err,
             " (expected a serialized sentencepiece ModelProto)");
  t->vocab_size_ = api.piece_size(t->handle_);
  OT_REQUIRE(t->vocab_size_ > 0, path, ": sentencepiece model has no pieces");
  t->bos_ = api.bos_id(t->handle_);
  t->eos_ = api.eos_id(t->handle_);
  return t;
}

std::optional<int64_t> SentencePieceTokenizer::bos_id() const {
  return bos_ >= 0 ? std::optional<int64_t>(bos_) : std::nullopt;
}

std::optional<int64_t> SentencePieceTokenizer::eos_id() const {
  return eos_ >= 0 ? std::optional<int64_t>(eos_) : std::nullopt;
}

void SentencePieceTokenizer::check_id(int64_t id) const {
  OT_REQUIRE(id >= 0 && id < vocab_size_, source_, ": token id ", id, " is outside the vocabulary (",
             vocab_size_, " ids)");
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int64_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  char err[512] = {0};
  auto emit = [](void* ctx, const int* ids, std::size_t n) {
    static_cast<std::vector<int64_t>*>(ctx)->insert(static_cast<std::vector<int64_t>*>(ctx)->end(), ids,
                                                    ids + n);
  };
  int rc = shim().encode(handle_, text.data(), text.size(), emit, &out, err, sizeof err);
  OT_REQUIRE(rc == 0, source_, ": sentencepiece encode failed: ", err);
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    check_id(id);
    v.push_back(static_cast<int>(id));
  }
  std::string out;
  char err[512] = {0};
  auto emit = [](void* ctx, const char* text, std::size_t n) {
    static_cast<std::string*>(ctx)->assign(text, n);
  };
  int rc = shim().decode(handle_, v.data(), v.size(), emit, &out, err, sizeof err);
  OT_REQUIRE(rc == 0, source_, ": sentencepiece decode failed: ", err);
  return out;
}

std::string SentencePieceTokenizer::decode_piece(int64_t prev, int64_t id) const {
  check_id(id);
  const char* p = nullptr;
  std::size_t n = 0;
  int flags = shim().piece(handle_, static_cast<int>(id), &p, &n);
  std::string piece(p, n);
  if (flags & OT_SPM_CONTROL) return std::string();
  if (flags & OT_SPM_UNKNOWN) return decode({id});
  if ((flags & OT_SPM_BYTE) && n == 6) {  // "<0xAB>"
    return std::string(1, static_cast<char>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16)));
  }
  // U+2581 (lower one eighth block) is sentencepiece's visible space.
  static const std::string kSpace = "\xE2\x96\x81";
  std::string out;
  for (std::size_t k = 0; k < piece.size();) {
    if (piece.compare(k, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      k += kSpace.size();
    } else {
      out.push_back(piece[k++]);
    }
  }
  if (bos_ >= 0 && prev == bos_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace ot
