// checkpoint/safetensors_header.cpp: see safetensors_header.h. Depends only on
// nlohmann-json and util/error.h (no LibTorch).
#include "checkpoint/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"

namespace ot {

std::size_t safetensors_element_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

namespace {

using json = nlohmann::json;

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

// nlohmann messages start with "[json.exception.parse_error.101] "; the tag helps nobody.
std::string strip_json_tag(const std::string& what) {
  if (!what.empty() && what[0] == '[') {
    auto close = what.find("] ");
    if (close != std::string::npos) return what.substr(close + 2);
  }
  return what;
}

// A non-negative JSON integer that fits int64, or nothing.
bool as_non_negative(const json& v, std::uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
    return out <= static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    out = static_cast<std::uint64_t>(s);
    return true;
  }
  return false;
}

SafetensorsEntry parse_entry(const std::string& label, const std::string& name, const json& v,
                             std::uint64_t data_size) {
  const std::string where = label + ": tensor '" + name + "': ";
  OT_REQUIRE(v.is_object(), where, "expected an object with dtype, shape and data_offsets, got ",
             v.type_name());
  SafetensorsEntry e;
  e.name = name;

  auto dt = v.find("dtype");
  OT_REQUIRE(dt != v.end(), where, "missing \"dtype\"");
  OT_REQUIRE(dt->is_string(), where, "\"dtype\" must be a string, got ", dt->type_name());
  e.dtype = dt->get<std::string>();
  std::size_t elem = safetensors_element_size(e.dtype);
  OT_REQUIRE(elem != 0, where, "unknown dtype '", e.dtype,
             "' (expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

  auto sh = v.find("shape");
  OT_REQUIRE(sh != v.end(), where, "missing \"shape\"");
  OT_REQUIRE(sh->is_array(), where, "\"shape\" must be an array of integers, got ", sh->type_name());
  // Product of the dims x element size, with overflow detection (a hostile header can
  // claim dims whose product wraps around to the span it lists).
  std::uint64_t bytes = elem;
  bool overflow = false;
  for (const auto& d : *sh) {
    std::uint64_t n = 0;
    OT_REQUIRE(as_non_negative(d, n), where, "\"shape\" must hold non-negative integers, got ",
               d.dump());
    e.shape.push_back(static_cast<int64_t>(n));
    if (!overflow && __builtin_mul_overflow(bytes, n, &bytes)) overflow = true;
  }

  auto off = v.find("data_offsets");
  OT_REQUIRE(off != v.end(), where, "missing \"data_offsets\"");
  OT_REQUIRE(off->is_array() && off->size() == 2 && as_non_negative((*off)[0], e.begin) &&
                 as_non_negative((*off)[1], e.end),
             where, "\"data_offsets\" must be [begin, end] with non-negative integers, got ",
             off->dump());
  OT_REQUIRE(e.begin <= e.end, where, "data_offsets [", e.begin, ", ", e.end,
             "] have begin > end");
  OT_REQUIRE(e.end <= data_size, where, "data_offsets [", e.begin, ", ", e.end,
             "] reach past the end of the data section (", data_size,
             " bytes; file truncated?)");
  std::uint64_t span = e.end - e.begin;
  OT_REQUIRE(!overflow, where, "shape ", shape_str(e.shape), " x ", e.dtype,
             " is too large (byte count overflows)");
  OT_REQUIRE(span == bytes, where, "data_offsets [", e.begin, ", ", e.end, "] span ", span,
             " bytes but shape ", shape_str(e.shape), " x ", e.dtype, " needs ", bytes);
  return e;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const char* bytes, std::uint64_t size,
                                           const std::string& label) {
  OT_REQUIRE(bytes != nullptr || size == 0, label, ": no data");
  OT_REQUIRE(size >= 8, label, ": file is ", size,
             " bytes, too short for a safetensors file (needs an 8-byte header length)");
  // The length field is little-endian; assemble it bytewise so the host order is moot.
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  OT_REQUIRE(n <= kMaxSafetensorsHeaderBytes, label, ": header length ", n,
             " bytes is implausibly large (limit ", kMaxSafetensorsHeaderBytes,
             "); not a safetensors file or corrupt");
  OT_REQUIRE(n <= size - 8, label, ": header length ", n, " bytes runs past the end of the file (",
             size, " bytes; truncated?)");
  OT_REQUIRE(n >= 2, label, ": header length ", n, " bytes is too short for a JSON object");

  const char* begin = bytes + 8;
  const char* end = begin + n;
  json root;
  try {
    root = json::parse(begin, end);
  } catch (const json::exception& e) {
    fail(label, ": malformed JSON header: ", strip_json_tag(e.what()));
  }
  OT_REQUIRE(root.is_object(), label, ": header must be a JSON object, got ", root.type_name());

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const std::uint64_t data_size = size - h.data_offset;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      OT_REQUIRE(it->is_object(), label, ": \"__metadata__\" must be an object of strings, got ",
                 it->type_name());
      for (auto m = it->begin(); m != it->end(); ++m) {
        OT_REQUIRE(m->is_string(), label, ": \"__metadata__\" key '", m.key(),
                   "' must map to a string, got ", m->type_name());
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(label, it.key(), *it, data_size));
  }

  std::sort(h.entries.begin(), h.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  // Empty tensors own no bytes, so only non-empty spans can overlap.
  const SafetensorsEntry* prev = nullptr;
  for (const auto& e : h.entries) {
    if (e.begin == e.end) continue;
    if (prev != nullptr) {
      OT_REQUIRE(e.begin >= prev->end, label, ": tensors '", prev->name, "' data_offsets [",
                 prev->begin, ", ", prev->end, "] and '", e.name, "' data_offsets [", e.begin,
                 ", ", e.end, "] overlap");
    }
    prev = &e;
  }
  return h;
}

}  // namespace ot
