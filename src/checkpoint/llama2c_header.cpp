// checkpoint/llama2c_header.cpp: see llama2c_header.h. Torch-free.
#include "checkpoint/llama2c_header.h"

#include <climits>
#include <cstring>

#include "util/error.h"

namespace ot {

namespace {

constexpr std::uint32_t kVersionedMagic = 0x616b3432;  // "ak42": export.py --version >= 1

int32_t read_i32(const char* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Counts of fp32 values: every product and sum is checked, so that a hostile header cannot
// wrap around to a small size that matches the file (and make the loader read past it).
struct Counter {
  const std::string& path;
  const Llama2cParams& p;

  [[noreturn]] void overflow() const {
    fail(path, ": header {dim ", p.dim, ", hidden_dim ", p.hidden_dim, ", n_layers ", p.n_layers,
         ", n_heads ", p.n_heads, ", n_kv_heads ", p.n_kv_heads, ", vocab_size ", p.vocab_size,
         ", seq_len ", p.seq_len, "} describes more than 2^64 bytes of weights; not a llama2.c checkpoint");
  }
  std::uint64_t mul(std::uint64_t a, std::uint64_t b) const {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) overflow();
    return r;
  }
  std::uint64_t add(std::uint64_t a, std::uint64_t b) const {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) overflow();
    return r;
  }
};

}  // namespace

std::uint64_t llama2c_file_bytes(const Llama2cParams& p, const std::string& path) {
  const std::uint64_t D = p.dim, F = p.hidden_dim, L = p.n_layers, V = p.vocab_size;
  const std::uint64_t hd = D / p.n_heads, kv = hd * p.n_kv_heads, T = p.seq_len;
  const Counter c{path, p};
  // Floats per kind, in file order; see run.c memory_map_weights.
  std::uint64_t floats = c.mul(V, D);                            // token_embedding_table
  floats = c.add(floats, c.mul(L, D));                           // rms_att_weight
  floats = c.add(floats, c.mul(L, c.mul(D, D)));                 // wq
  floats = c.add(floats, c.mul(2, c.mul(L, c.mul(D, kv))));      // wk, wv
  floats = c.add(floats, c.mul(L, c.mul(D, D)));                 // wo
  floats = c.add(floats, c.mul(L, D));                           // rms_ffn_weight
  floats = c.add(floats, c.mul(3, c.mul(L, c.mul(D, F))));       // w1, w2, w3
  floats = c.add(floats, D);                                     // rms_final_weight
  floats = c.add(floats, c.mul(T, hd));                          // freq_cis_real + imag (T x hd/2 each)
  if (!p.shared_classifier) floats = c.add(floats, c.mul(V, D));  // wcls
  return c.add(kLlama2cHeaderBytes, c.mul(floats, sizeof(float)));
}

Llama2cParams parse_llama2c_header(const char* base, std::uint64_t size, const std::string& path) {
  OT_REQUIRE(size >= kLlama2cHeaderBytes, path, ": file is ", size,
             " bytes, too short for a llama2.c checkpoint header (28 bytes)");
  std::uint32_t magic;
  std::memcpy(&magic, base, sizeof magic);
  OT_REQUIRE(magic != kVersionedMagic, path, ": llama2.c versioned export (magic \"ak42\", version ",
             read_i32(base + 4),
             ") is not supported; export the model with llama2.c's legacy fp32 format "
             "(export.py --version 0)");

  Llama2cParams p;
  p.dim = read_i32(base);
  p.hidden_dim = read_i32(base + 4);
  p.n_layers = read_i32(base + 8);
  p.n_heads = read_i32(base + 12);
  p.n_kv_heads = read_i32(base + 16);
  const int32_t vocab = read_i32(base + 20);
  p.seq_len = read_i32(base + 24);
  p.shared_classifier = vocab > 0;
  OT_REQUIRE(vocab != 0 && vocab != INT32_MIN, path, ": header vocab_size is ", vocab);
  p.vocab_size = vocab > 0 ? vocab : -vocab;
  OT_REQUIRE(p.dim > 0 && p.hidden_dim > 0 && p.n_layers > 0 && p.n_heads > 0 &&
                 p.n_kv_heads > 0 && p.seq_len > 0,
             path, ": not a llama2.c checkpoint: header {dim ", p.dim, ", hidden_dim ",
             p.hidden_dim, ", n_layers ", p.n_layers, ", n_heads ", p.n_heads, ", n_kv_heads ",
             p.n_kv_heads, ", vocab_size ", vocab, ", seq_len ", p.seq_len,
             "} must be positive (vocab_size may be negative)");
  OT_REQUIRE(p.dim % p.n_heads == 0 && (p.dim / p.n_heads) % 2 == 0, path, ": dim ", p.dim,
             " must split into ", p.n_heads, " heads of even size");
  OT_REQUIRE(p.n_kv_heads <= p.n_heads && p.n_heads % p.n_kv_heads == 0, path, ": n_heads ",
             p.n_heads, " must be a multiple of n_kv_heads ", p.n_kv_heads);

  const std::uint64_t expected = llama2c_file_bytes(p, path);
  OT_REQUIRE(size >= expected, path, ": truncated llama2.c checkpoint: header {dim ", p.dim,
             ", hidden_dim ", p.hidden_dim, ", n_layers ", p.n_layers, ", n_heads ", p.n_heads,
             ", n_kv_heads ", p.n_kv_heads, ", vocab_size ", vocab, ", seq_len ", p.seq_len,
             "} needs ", expected, " bytes, file has ", size);
  OT_REQUIRE(size == expected, path, ": llama2.c checkpoint has ", size - expected,
             " unexpected trailing bytes (header needs exactly ", expected,
             " bytes; a different or newer export format?)");
  return p;
}

}  // namespace ot
