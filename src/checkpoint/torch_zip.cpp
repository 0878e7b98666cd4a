// checkpoint/torch_zip.cpp: see torch_zip.h. Torch-free. Offsets and sizes are those of
// PKWARE's APPNOTE (sections 4.3.7 local header, 4.3.12 central header, 4.3.14-4.3.16 zip64
// and end records, 4.5.3 zip64 extra field).
#include "checkpoint/torch_zip.h"

#include <cstring>

#include "util/error.h"

namespace ot {

namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEndBytes = 22, kLocatorBytes = 20, kZip64EndBytes = 56;
constexpr std::size_t kCentralBytes = 46, kLocalBytes = 30;

template <class T>
T get(const char* p) {  // little-endian, as zip stores every field (x86 and ARM hosts)
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// True if [offset, offset + n) lies inside [0, size).
bool inside(std::uint64_t offset, std::uint64_t n, std::uint64_t size) {
  return offset <= size && n <= size - offset;
}

}  // namespace

std::uint64_t check_torch_zip(const char* d, std::size_t size, const std::string& path) {
  const std::string what = ": corrupt PyTorch zip checkpoint: ";
  // The end-of-central-directory record: 22 bytes plus a comment of at most 64 KiB; the
  // last signature wins, as in miniz.
  OT_REQUIRE(size >= kEndBytes, path, ": truncated PyTorch zip checkpoint (", size,
             " bytes, too short for the zip end-of-central-directory record)");
  std::size_t end = size;
  const std::size_t last = size - kEndBytes;
  const std::size_t first = last > 65535 ? last - 65535 : 0;
  for (std::size_t i = last + 1; i-- > first;) {
    if (get<std::uint32_t>(d + i) == kEndSig) {
      end = i;
      break;
    }
  }
  OT_REQUIRE(end != size, path,
             ": truncated PyTorch zip checkpoint (zip end-of-central-directory record missing)");
  const std::uint16_t disk = get<std::uint16_t>(d + end + 4), cd_disk = get<std::uint16_t>(d + end + 6);
  std::uint64_t entries_here = get<std::uint16_t>(d + end + 8), entries = get<std::uint16_t>(d + end + 10);
  std::uint64_t cd_size = get<std::uint32_t>(d + end + 12), cd_offset = get<std::uint32_t>(d + end + 16);
  OT_REQUIRE(disk == 0 && cd_disk == 0 && entries_here == entries, path, what,
             "multi-disk zip archives are not supported (end record at byte ", end, ")");

  // zip64: a locator right before the end record points at the zip64 end record.
  if (end >= kLocatorBytes && get<std::uint32_t>(d + end - kLocatorBytes) == kZip64LocatorSig) {
    const char* loc = d + end - kLocatorBytes;
    const std::uint64_t z = get<std::uint64_t>(loc + 8);
    OT_REQUIRE(get<std::uint32_t>(loc + 4) == 0 && get<std::uint32_t>(loc + 16) <= 1, path, what,
               "multi-disk zip64 archives are not supported");
    OT_REQUIRE(inside(z, kZip64EndBytes, end - kLocatorBytes) && get<std::uint32_t>(d + z) == kZip64EndSig, path,
               what, "zip64 end record expected at byte ", z, " (of ", size, ") is missing");
    OT_REQUIRE(get<std::uint32_t>(d + z + 16) == 0 && get<std::uint32_t>(d + z + 20) == 0 &&
                   get<std::uint64_t>(d + z + 24) == get<std::uint64_t>(d + z + 32),
               path, what, "multi-disk zip64 archives are not supported");
    entries = get<std::uint64_t>(d + z + 32);
    cd_size = get<std::uint64_t>(d + z + 40);
    cd_offset = get<std::uint64_t>(d + z + 48);
  }
  OT_REQUIRE(entries > 0, path, what, "the archive has no entries");
  OT_REQUIRE(inside(cd_offset, cd_size, size), path, what, "central directory (", cd_size, " bytes at byte ",
             cd_offset, ") lies outside the file of ", size, " bytes (truncated?)");
  OT_REQUIRE(entries <= cd_size / kCentralBytes, path, what, entries, " entries cannot fit in a central directory of ",
             cd_size, " bytes");

  // Every central header, its local header and its data.
  std::uint64_t p = cd_offset;
  const std::uint64_t cd_end = cd_offset + cd_size;
  for (std::uint64_t i = 0; i < entries; ++i) {
    OT_REQUIRE(inside(p, kCentralBytes, cd_end) && get<std::uint32_t>(d + p) == kCentralSig, path, what,
               "central directory entry ", i, " expected at byte ", p, " is missing");
    const char* c = d + p;
    std::uint64_t comp = get<std::uint32_t>(c + 20), uncomp = get<std::uint32_t>(c + 24);
    const std::uint16_t name_len = get<std::uint16_t>(c + 28), extra_len = get<std::uint16_t>(c + 30),
                        comment_len = get<std::uint16_t>(c + 32), start_disk = get<std::uint16_t>(c + 34);
    std::uint64_t local = get<std::uint32_t>(c + 42);
    const std::uint64_t var = std::uint64_t{name_len} + extra_len + comment_len;
    OT_REQUIRE(inside(p + kCentralBytes, var, cd_end), path, what, "central directory entry ", i,
               " runs past the central directory");
    OT_REQUIRE(start_disk == 0 || start_disk == 0xffff, path, what, "entry ", i, " starts on disk ", start_disk);
    // zip64 extra field: the 64-bit values of the fields stored as 0xffffffff, in order.
    const char* extra = c + kCentralBytes + name_len;
    for (std::uint64_t e = 0; e + 4 <= extra_len;) {
      const std::uint16_t id = get<std::uint16_t>(extra + e), len = get<std::uint16_t>(extra + e + 2);
      OT_REQUIRE(e + 4 + len <= extra_len, path, what, "entry ", i, ": extra field runs past its header");
      if (id == 0x0001) {
        std::uint64_t q = e + 4;
        for (std::uint64_t* field : {&uncomp, &comp, &local}) {
          if (*field != 0xffffffffu) continue;
          OT_REQUIRE(q + 8 <= e + 4 + len, path, what, "entry ", i, ": zip64 extra field too short");
          *field = get<std::uint64_t>(extra + q);
          q += 8;
        }
      }
      e += 4 + std::uint64_t{len};
    }
    // The reader allocates the uncompressed size up front: it must follow from the data.
    const std::uint16_t method = get<std::uint16_t>(c + 10);
    OT_REQUIRE(method == 0 || method == 8, path, what, "entry ", i, " ('", std::string(c + kCentralBytes, name_len),
               "'): compression method ", method, ", expected 0 (stored, as torch.save writes) or 8 (deflate)");
    OT_REQUIRE(method == 0 ? uncomp == comp : uncomp / 1032 <= comp, path, what, "entry ", i, " ('",
               std::string(c + kCentralBytes, name_len), "'): ", uncomp, " bytes cannot come from ", comp,
               " bytes of ", method == 0 ? "stored" : "deflated", " data");
    OT_REQUIRE(inside(local, kLocalBytes, size) && get<std::uint32_t>(d + local) == kLocalSig, path, what,
               "entry ", i, " ('", std::string(c + kCentralBytes, name_len), "'): local header expected at byte ",
               local, " is missing");
    const std::uint64_t data = local + kLocalBytes + get<std::uint16_t>(d + local + 26) +
                               get<std::uint16_t>(d + local + 28);
    OT_REQUIRE(inside(data, comp, size), path, what, "entry ", i, " ('", std::string(c + kCentralBytes, name_len),
               "'): its ", comp, " bytes of data run past the end of the file (truncated?)");
    p += kCentralBytes + var;
  }
  return entries;
}

}  // namespace ot
