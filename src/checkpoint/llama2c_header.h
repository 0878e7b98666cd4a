// checkpoint/llama2c_header.h: the torch-free half of the llama2.c checkpoint reader: the
// header struct and the validating header parser, which also checks the file size against
// the weights the header implies. Kept free of LibTorch so that fuzz targets (tests/fuzz/)
// compile it alone with clang and sanitizers.
//
// File layout (llama2.c legacy fp32 export): 7 x int32 little-endian header {dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}, then the fp32 weights in
// run.c's memory_map_weights order (see llama2c.cpp), and nothing else.
#pragma once

#include <cstdint>
#include <string>

namespace ot {

// The llama2.c header. vocab_size is stored negative in the file when the classifier
// (lm_head) is not shared with the embedding; here it is always positive.
struct Llama2cParams {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;
  int32_t seq_len = 0;
  bool shared_classifier = true;
};

// Bytes of the header.
constexpr std::uint64_t kLlama2cHeaderBytes = 7 * sizeof(int32_t);

// Parses and validates the header of a `size`-byte llama2.c checkpoint whose bytes start at
// `data`; `path` names the file in messages. Throws ot::Error for a short file, a versioned
// ("ak42") export, non-positive or inconsistent sizes, sizes whose weights cannot fit in
// memory, and a file size other than the header's (truncated or trailing bytes). On return
// the file holds exactly llama2c_file_bytes(params) bytes.
Llama2cParams parse_llama2c_header(const char* data, std::uint64_t size, const std::string& path);

// The file size a valid header implies: header plus every weight (see llama2c.cpp).
std::uint64_t llama2c_file_bytes(const Llama2cParams& p, const std::string& path);

}  // namespace ot
