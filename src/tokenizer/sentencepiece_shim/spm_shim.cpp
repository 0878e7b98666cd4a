// tokenizer/sentencepiece_shim/spm_shim.cpp: implementation of the C interface in
// spm_shim.h on top of sentencepiece::SentencePieceProcessor.
#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {
using Processor = sentencepiece::SentencePieceProcessor;

void set_error(char* err, std::size_t err_len, const std::string& msg) {
  if (err == nullptr || err_len == 0) return;
  std::size_t n = std::min(msg.size(), err_len - 1);
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}
const Processor* P(const void* h) { return static_cast<const Processor*>(h); }
}  // namespace

extern "C" {

void* ot_spm_load(const char* path, char* err, std::size_t err_len) {
  try {
    auto* p = new Processor();
    auto status = p->Load(path);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      delete p;
      return nullptr;
    }
    return p;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

void ot_spm_free(void* handle) { delete static_cast<Processor*>(handle); }
int ot_spm_piece_size(const void* h) { return P(h)->GetPieceSize(); }
int ot_spm_bos_id(const void* h) { return P(h)->bos_id(); }
int ot_spm_eos_id(const void* h) { return P(h)->eos_id(); }

int ot_spm_piece(const void* h, int id, const char** piece, std::size_t* len) {
  const std::string& s = P(h)->IdToPiece(id);
  *piece = s.data();
  *len = s.size();
  return (P(h)->IsControl(id) ? OT_SPM_CONTROL : 0) | (P(h)->IsByte(id) ? OT_SPM_BYTE : 0) |
         (P(h)->IsUnknown(id) ? OT_SPM_UNKNOWN : 0);
}

int ot_spm_encode(const void* h, const char* text, std::size_t len, ot_spm_ids_fn emit, void* ctx,
                  char* err, std::size_t err_len) {
  try {
    std::vector<int> ids;
    auto status = P(h)->Encode(std::string(text, len), &ids);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return 1;
    }
    emit(ctx, ids.data(), ids.size());
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

int ot_spm_decode(const void* h, const int* ids, std::size_t n, ot_spm_text_fn emit, void* ctx,
                  char* err, std::size_t err_len) {
  try {
    std::string out;
    auto status = P(h)->Decode(std::vector<int>(ids, ids + n), &out);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return 1;
    }
    emit(ctx, out.data(), out.size());
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

}  // extern "C"
