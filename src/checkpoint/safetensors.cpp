// checkpoint/safetensors.cpp: see safetensors.h. Reading memory-maps the file and hands
// out tensors that view its pages; writing streams each tensor's bytes after the header.
#include "checkpoint/safetensors.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/device.h"
#include "util/error.h"

// Tensors are stored little-endian and handed out as raw views, so the host must match.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace ot {

c10::ScalarType safetensors_scalar_type(const std::string& dtype) {
  static const std::map<std::string, c10::ScalarType> types = {
      {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf},  {"BF16", c10::kBFloat16},
      {"I64", c10::kLong},   {"I32", c10::kInt},   {"I16", c10::kShort}, {"I8", c10::kChar},
      {"U8", c10::kByte},    {"BOOL", c10::kBool}};
  auto it = types.find(dtype);
  OT_REQUIRE(it != types.end(), "safetensors: unknown dtype '", dtype, "'");
  return it->second;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.map_ = MappedFile::open(path);
  f.header_ = parse_safetensors_header(f.map_->data(), f.map_->size(), path);
  for (std::size_t i = 0; i < f.header_.entries.size(); ++i) {
    f.index_[f.header_.entries[i].name] = i;
  }
  return f;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  OT_REQUIRE(it != index_.end(), path(), ": no tensor named '", name, "'");
  return header_.entries[it->second];
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.entries.size());
  for (const auto& e : header_.entries) out.push_back(e.name);
  return out;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const c10::ScalarType type = safetensors_scalar_type(e.dtype);
  const std::size_t elem = safetensors_element_size(e.dtype);
  // The header was validated against the file size, so [ptr, ptr + span) is in the map.
  char* ptr = map_->data() + header_.data_offset + e.begin;
  const std::size_t span = static_cast<std::size_t>(e.end - e.begin);
  if (type == c10::kBool) {
    // Any byte other than 0/1 in a bool tensor is undefined behaviour in kernels.
    for (std::size_t i = 0; i < span; ++i) {
      OT_REQUIRE(static_cast<unsigned char>(ptr[i]) <= 1, path(), ": tensor '", name,
                 "': BOOL data holds byte ", static_cast<int>(static_cast<unsigned char>(ptr[i])),
                 " at element ", i, ", expected 0 or 1");
    }
  }
  auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  if (span == 0) return at::empty(e.shape, options);
  if (reinterpret_cast<std::uintptr_t>(ptr) % elem == 0) {
    // Zero-copy: the deleter owns a reference to the mapping, keeping it alive as long as
    // any tensor (or view of one) still points into it.
    std::shared_ptr<MappedFile> keep = map_;
    return at::from_blob(ptr, e.shape, [keep](void*) {}, options);
  }
  at::Tensor t = at::empty(e.shape, options);
  std::memcpy(t.data_ptr(), ptr, span);
  return t;
}

StateDict SafetensorsFile::all() const {
  StateDict out;
  for (const auto& e : header_.entries) out.emplace(e.name, tensor(e.name));
  return out;
}

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Pass 1: check every tensor and lay out the header before any byte is written.
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    OT_REQUIRE(name != "__metadata__", path, ": a tensor cannot be named \"__metadata__\"");
    OT_REQUIRE(t.defined(), path, ": tensor '", name, "' is undefined");
    OT_REQUIRE(t.layout() == at::kStrided, path, ": tensor '", name,
               "' is not dense (sparse/other layouts cannot be stored)");
    std::string dtype;
    try {
      dtype = safetensors_dtype_name(t.scalar_type());
    } catch (const Error&) {
      fail(path, ": tensor '", name, "' has dtype ", c10::toString(t.scalar_type()),
           ", which safetensors cannot store");
    }
    const auto bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  // nlohmann's default object is a std::map: keys come out sorted.
  std::string text = header.dump();
  // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    OT_REQUIRE(out.good(), tmp, ": cannot create file: ", std::strerror(errno));
    char len[8];
    std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors) {
      at::Tensor c = t.detach().to(at::kCPU).contiguous();
      const auto bytes = static_cast<std::streamsize>(c.numel() * c.element_size());
      if (bytes > 0) out.write(static_cast<const char*>(c.data_ptr()), bytes);
    }
    out.flush();
    OT_REQUIRE(out.good(), path, ": cannot write the tensors (", errno ? std::strerror(errno) : "write failed",
               "); the file is left as it was");
  });
}

}  // namespace ot
