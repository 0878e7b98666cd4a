// checkpoint/torch_zip.cpp: see torch_zip.h. Torch-free; zlib inflates and sums. Offsets and
// sizes are those of PKWARE's APPNOTE (sections 4.3.7 local header, 4.3.12 central header,
// 4.3.14-4.3.16 zip64 and end records, 4.5.3 zip64 extra field).
#include "checkpoint/torch_zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <set>

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

std::vector<ZipEntry> read_zip_directory(const char* d, std::size_t size, const std::string& path) {
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
  std::vector<ZipEntry> out;
  std::set<std::string> names;
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
    std::string name(c + kCentralBytes, name_len);
    OT_REQUIRE(inside(data, comp, size), path, what, "entry ", i, " ('", name, "'): its ", comp,
               " bytes of data run past the end of the file (truncated?)");
    OT_REQUIRE(names.insert(name).second, path, what, "entry '", name, "' appears twice");
    out.push_back({std::move(name), method, data, comp, uncomp, get<std::uint32_t>(c + 16)});
    p += kCentralBytes + var;
  }
  return out;
}

void read_zip_entry(const char* d, const ZipEntry& e, char* out, const std::string& path) {
  const std::string what = ": corrupt PyTorch zip checkpoint: entry '" + e.name + "': ";
  if (e.size == 0) {  // nothing to write; the CRC-32 of no bytes is 0
    OT_REQUIRE(e.crc32 == 0, path, what, "CRC-32 mismatch (the file is corrupt)");
    return;
  }
  if (e.method == 0) {
    std::memcpy(out, d + e.offset, e.size);
  } else {
    // Raw deflate (negative window bits: no zlib header), fed in pieces that fit zlib's uInt;
    // both buffers are topped up before every call, so Z_BUF_ERROR means no progress can be made.
    z_stream z{};
    OT_REQUIRE(inflateInit2(&z, -MAX_WBITS) == Z_OK, path, what, "zlib could not start");
    const std::uint64_t chunk = 1u << 30;
    std::uint64_t in_left = e.stored_size, out_left = e.size;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(d + e.offset));
    z.next_out = reinterpret_cast<Bytef*>(out);
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (z.avail_in == 0) {
        z.avail_in = static_cast<uInt>(std::min(in_left, chunk));
        in_left -= z.avail_in;
      }
      if (z.avail_out == 0) {
        z.avail_out = static_cast<uInt>(std::min(out_left, chunk));
        out_left -= z.avail_out;
      }
      rc = inflate(&z, Z_NO_FLUSH);
    }
    const std::uint64_t produced = e.size - out_left - z.avail_out;
    inflateEnd(&z);
    OT_REQUIRE(rc == Z_STREAM_END && produced == e.size, path, what, "its deflated data ",
               rc == Z_STREAM_END ? "inflates to fewer bytes than recorded" : "is corrupt or does not fit its size");
  }
  // zlib's crc32 takes at most uInt bytes at a time.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::uint64_t done = 0; done < e.size;) {
    const auto n = static_cast<uInt>(std::min<std::uint64_t>(e.size - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out + done), n);
    done += n;
  }
  OT_REQUIRE(crc == e.crc32, path, what, "CRC-32 mismatch (the file is corrupt)");
}

}  // namespace ot
