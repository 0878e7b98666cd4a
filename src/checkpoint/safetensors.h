// checkpoint/safetensors.h: the safetensors format (8-byte little-endian header length,
// JSON header, raw little-endian data). The reader validates the whole header before any
// tensor is touched: length within the file, well-formed JSON, known dtype, offsets in
// range, non-overlapping, and shape x element size equal to the byte span. Any violation
// throws ot::Error naming the file and the tensor.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "util/fs.h"

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

// Parses and validates the header of a safetensors file held in `bytes` (the whole file).
// `label` names the file in error messages. Never reads outside [bytes, bytes + size).
SafetensorsHeader parse_safetensors_header(const char* bytes, std::uint64_t size,
                                           const std::string& label);

// A validated, memory-mapped safetensors file.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return map_->path(); }
  bool contains(const std::string& name) const;
  // A tensor viewing the mapped bytes (copied only when the data is misaligned).
  at::Tensor tensor(const std::string& name) const;
  StateDict all() const;

 private:
  std::shared_ptr<MappedFile> map_;
  SafetensorsHeader header_;
};

// Writes tensors (any device/layout; stored contiguous, little-endian) atomically.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace ot
