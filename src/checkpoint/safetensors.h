// checkpoint/safetensors.h: the safetensors format (8-byte little-endian header length,
// JSON header, raw little-endian data). The reader validates the whole header before any
// tensor is touched: length within the file, well-formed JSON, known dtype, offsets in
// range, non-overlapping, and shape x element size equal to the byte span. Any violation
// throws ot::Error naming the file and the tensor. The header structs and the parser
// (parse_safetensors_header) live in the torch-free safetensors_header.h.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/safetensors_header.h"
#include "checkpoint/state_dict.h"
#include "util/fs.h"

namespace ot {

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
  std::vector<std::string> names() const;  // in file order

 private:
  const SafetensorsEntry& entry(const std::string& name) const;

  std::shared_ptr<MappedFile> map_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t> index_;  // name -> position in header_.entries
};

// The c10 dtype of a safetensors dtype name; throws ot::Error for an unknown name.
c10::ScalarType safetensors_scalar_type(const std::string& dtype);

// Writes tensors (any device/layout; stored contiguous, little-endian) atomically. The
// JSON header has sorted keys and is space-padded so the data section starts 8-byte
// aligned; data follows in key order. Undefined or sparse tensors throw ot::Error.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace ot
