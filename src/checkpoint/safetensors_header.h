// checkpoint/safetensors_header.h: the torch-free half of the safetensors format: the
// header structs and the validating header parser. Kept free of LibTorch so that fuzz
// targets (tests/fuzz/) compile it alone with clang and sanitizers.
//
// File layout: u64 little-endian N | N bytes of UTF-8 JSON | data section. The JSON maps
// tensor name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with
// offsets relative to the data section, plus an optional "__metadata__" str -> str.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ot {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::uint64_t begin = 0;      // byte offsets relative to the start of the data section
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_offset = 0;                  // 8 + header length
  std::vector<SafetensorsEntry> entries;          // in file order (sorted by begin)
  std::map<std::string, std::string> metadata;    // "__metadata__"
};

// Largest header accepted (the reference implementation uses the same bound); a larger
// length field means a corrupt file, not a real model.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Bytes per element of a safetensors dtype name; 0 for a name the format does not know.
std::size_t safetensors_element_size(const std::string& dtype);

// Parses and validates the header of a safetensors file held in `bytes` (the whole file).
// `label` names the file in error messages. Never reads outside [bytes, bytes + size).
// Throws ot::Error (one message: file, tensor, what was expected) on any violation.
SafetensorsHeader parse_safetensors_header(const char* bytes, std::uint64_t size,
                                           const std::string& label);

}  // namespace ot
