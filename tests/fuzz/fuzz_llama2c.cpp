// tests/fuzz/fuzz_llama2c.cpp: libFuzzer target for the llama2.c checkpoint header parser
// (checkpoint/llama2c_header.h), the torch-free half of load_llama2c. Any input must parse
// or throw ot::Error; an accepted header must describe exactly the input's bytes, computed
// here again in 128-bit arithmetic (load_llama2c reads that many bytes from the mapping).
// A crash, a sanitizer report, a violated size or any other exception escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "checkpoint/llama2c_header.h"
#include "fuzz_common.h"
#include "util/error.h"

namespace {

unsigned __int128 expected_bytes(const ot::Llama2cParams& p) {
  using u128 = unsigned __int128;
  const u128 D = p.dim, F = p.hidden_dim, L = p.n_layers, V = p.vocab_size, T = p.seq_len;
  const u128 hd = D / p.n_heads, kv = hd * p.n_kv_heads;
  u128 floats = V * D + L * D + L * D * D + 2 * L * D * kv + L * D * D + L * D + 3 * L * D * F + D + T * hd;
  if (!p.shared_classifier) floats += V * D;
  return ot::kLlama2cHeaderBytes + 4 * floats;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const ot::Llama2cParams p =
        ot::parse_llama2c_header(reinterpret_cast<const char*>(data), size, "fuzz.bin");
    if (expected_bytes(p) != size) {
      std::fprintf(stderr, "fuzz_llama2c: accepted a header whose weights need another size than %zu\n", size);
      std::abort();
    }
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
