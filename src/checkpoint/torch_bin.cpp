// checkpoint/torch_bin.cpp: see torch_bin.h. Our own reader end to end: the zip directory and
// entries (torch_zip.h), the pickle program read as a state dict (torch_pickle.h), then one
// tensor per storage entry and a strided view of it per state-dict key. LibTorch's unpickler
// is never used: it trusts the pickle it reads, and a file may come from the other party.
#include "checkpoint/torch_bin.h"

#include <algorithm>
#include <map>
#include <vector>

#include "checkpoint/torch_pickle.h"
#include "checkpoint/torch_zip.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

bool starts_with(const std::vector<char>& data, const char* magic, std::size_t n) {
  if (data.size() < n) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (data[i] != magic[i]) return false;
  return true;
}

at::ScalarType scalar_type(TorchStorageType t) {
  switch (t) {
    case TorchStorageType::kFloat: return at::kFloat;
    case TorchStorageType::kDouble: return at::kDouble;
    case TorchStorageType::kHalf: return at::kHalf;
    case TorchStorageType::kBFloat16: return at::kBFloat16;
    case TorchStorageType::kLong: return at::kLong;
    case TorchStorageType::kInt: return at::kInt;
    case TorchStorageType::kShort: return at::kShort;
    case TorchStorageType::kChar: return at::kChar;
    case TorchStorageType::kByte: return at::kByte;
    case TorchStorageType::kBool: return at::kBool;
  }
  fail("internal error: unknown storage type");
}

// torch.save names every entry `<archive>/...`, the archive being the file's stem when saved.
std::string archive_name(const std::vector<ZipEntry>& entries, const std::string& path) {
  std::string archive;
  for (const ZipEntry& e : entries) {
    const std::size_t slash = e.name.find('/');
    OT_REQUIRE(slash != std::string::npos && slash > 0, path, ": zip entry '", e.name,
               "' is not inside the archive folder torch.save writes every entry in");
    if (archive.empty()) archive = e.name.substr(0, slash);
    OT_REQUIRE(e.name.compare(0, slash, archive) == 0 && slash == archive.size(), path, ": zip entries in two folders ('",
               archive, "' and '", e.name.substr(0, slash), "'), expected one as torch.save writes");
  }
  return archive;
}

}  // namespace

StateDict load_torch_bin(const std::string& path, const std::string& entry) {
  OT_REQUIRE(file_exists(path), path, ": no such file");
  const std::vector<char> data = read_binary_file(path);
  OT_REQUIRE(!data.empty(), path, ": file is empty, expected a PyTorch zip checkpoint");
  if (!starts_with(data, "PK\x03\x04", 4)) {
    // torch.save before 1.6 wrote a bare pickle stream (starts with the PROTO opcode).
    if (static_cast<unsigned char>(data[0]) == 0x80) {
      fail(path, ": legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with torch>=1.6 "
           "(torch.save(torch.load(f), f)) or convert it to safetensors");
    }
    fail(path, ": not a PyTorch zip checkpoint (no zip signature at the start of the file)");
  }
  const std::vector<ZipEntry> entries = read_zip_directory(data.data(), data.size(), path);
  const std::string archive = archive_name(entries, path);
  std::map<std::string, const ZipEntry*> by_name;
  for (const ZipEntry& e : entries) by_name.emplace(e.name.substr(archive.size() + 1), &e);
  auto entry_bytes = [&](const ZipEntry& e) {
    std::vector<char> bytes(e.size);
    read_zip_entry(data.data(), e, bytes.data(), path);
    return bytes;
  };

  bool big_endian = false;
  if (const auto it = by_name.find("byteorder"); it != by_name.end()) {
    const std::vector<char> order = entry_bytes(*it->second);
    const std::string s(order.begin(), order.end());
    OT_REQUIRE(s == "little" || s == "big", path, ": entry '", it->second->name, "' says '", s.substr(0, 16),
               "', expected 'little' or 'big'");
    big_endian = s == "big";
  }
  const auto pkl = by_name.find("data.pkl");
  OT_REQUIRE(pkl != by_name.end(), path, ": no '", archive, "/data.pkl' entry (not a torch.save file?)");
  const std::vector<char> pickle = entry_bytes(*pkl->second);
  const std::vector<PickledTensor> tensors =
      read_state_dict_pickle(pickle.data(), pickle.size(), path + ": " + pkl->second->name, entry);

  // One tensor per storage; views of it keep tied weights tied, as torch.load does.
  std::map<std::string, at::Tensor> storages;
  StateDict out;
  for (const PickledTensor& t : tensors) {
    at::Tensor& storage = storages[t.storage_key];
    if (!storage.defined()) {
      const auto e = by_name.find("data/" + t.storage_key);
      OT_REQUIRE(e != by_name.end(), path, ": tensor '", t.name, "' lies in storage '", t.storage_key,
                 "', but the archive has no entry '", archive, "/data/", t.storage_key, "'");
      const std::size_t width = element_size(t.type);
      OT_REQUIRE(e->second->size == static_cast<std::uint64_t>(t.storage_numel) * width, path, ": entry '",
                 e->second->name, "' holds ", e->second->size, " bytes, but the pickle says ", t.storage_numel,
                 " elements of ", width, " bytes (", storage_type_name(t.type), ")");
      storage = at::empty({t.storage_numel}, at::TensorOptions().dtype(scalar_type(t.type)));
      char* bytes = static_cast<char*>(storage.data_ptr());
      if (e->second->size > 0) read_zip_entry(data.data(), *e->second, bytes, path);
      if (big_endian && width > 1)
        for (std::size_t k = 0; k < e->second->size; k += width) std::reverse(bytes + k, bytes + k + width);
      // A bool is one byte, 0 or 1: any other byte is not a value LibTorch can hold.
      if (t.type == TorchStorageType::kBool)
        for (std::size_t k = 0; k < e->second->size; ++k)
          OT_REQUIRE(static_cast<unsigned char>(bytes[k]) <= 1, path, ": entry '", e->second->name,
                     "' (BoolStorage) holds byte ", static_cast<int>(static_cast<unsigned char>(bytes[k])),
                     " at element ", k, ", expected 0 or 1");
    }
    out.emplace(t.name, storage.as_strided(t.sizes, t.strides, t.offset));
  }
  return out;
}

}  // namespace ot
