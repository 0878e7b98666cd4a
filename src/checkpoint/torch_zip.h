// checkpoint/torch_zip.h: the zip container of `torch.save` files (the format since torch
// 1.6): its directory, checked, and its entries' bytes, checked against their CRC-32.
// Kept free of LibTorch so that fuzz targets (tests/fuzz/) compile it alone with clang and
// sanitizers.
//
// Checked: the end-of-central-directory record (and, when present, the zip64 locator and
// zip64 end record, which torch.save always writes), a single-disk archive, the central
// directory inside the file, and for every entry its central header, its local header and
// its (stored or deflated) data inside the file, a size its data can hold, and a name used
// once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ot {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;          // 0 stored (what torch.save writes), 8 deflated
  std::uint64_t offset = 0;          // of its data in the file
  std::uint64_t stored_size = 0;     // bytes in the file
  std::uint64_t size = 0;            // bytes once inflated
  std::uint32_t crc32 = 0;           // of the inflated bytes, as the directory records it
};

// The entries of the zip archive of `size` bytes at `data`, in directory order. Throws
// ot::Error naming `path` and the structure at fault unless the checks above pass.
std::vector<ZipEntry> read_zip_directory(const char* data, std::size_t size, const std::string& path);

// Writes the `e.size` bytes of entry `e` of the archive at `data` to `out`, inflating a
// deflated entry; throws ot::Error naming `path` and the entry when the data is corrupt or
// its CRC-32 differs from the directory's.
void read_zip_entry(const char* data, const ZipEntry& e, char* out, const std::string& path);

}  // namespace ot
