// tokenizer/sentencepiece_shim/spm_shim.h: the C interface of libot_spm_shim.so, a tiny
// shared library around libsentencepiece. Why a separate library: Debian's
// libsentencepiece carries its own (older) protobuf-lite and exports its symbols, which
// clash with the libprotobuf that LibTorch loads (the process crashes at start-up when
// both are linked). The offsite library therefore dlopen()s this shim with RTLD_LOCAL |
// RTLD_DEEPBIND so sentencepiece and its protobuf copy stay private.
#pragma once

#include <cstddef>

extern "C" {

// Piece flags returned by ot_spm_piece.
enum { OT_SPM_CONTROL = 1, OT_SPM_BYTE = 2, OT_SPM_UNKNOWN = 4 };

typedef void (*ot_spm_ids_fn)(void* ctx, const int* ids, std::size_t n);
typedef void (*ot_spm_text_fn)(void* ctx, const char* text, std::size_t n);

// Returns a handle, or nullptr with a message in err.
void* ot_spm_load(const char* path, char* err, std::size_t err_len);
void ot_spm_free(void* handle);
int ot_spm_piece_size(const void* handle);
int ot_spm_bos_id(const void* handle);
int ot_spm_eos_id(const void* handle);
// Pointer/length of a piece (valid while the handle lives) and its OT_SPM_* flags.
int ot_spm_piece(const void* handle, int id, const char** piece, std::size_t* len);
// 0 on success; otherwise the message is in err.
int ot_spm_encode(const void* handle, const char* text, std::size_t len, ot_spm_ids_fn emit, void* ctx,
                  char* err, std::size_t err_len);
int ot_spm_decode(const void* handle, const int* ids, std::size_t n, ot_spm_text_fn emit, void* ctx,
                  char* err, std::size_t err_len);
}
