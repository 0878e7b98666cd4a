// util/content_hash.h: SHA-256 (FIPS 180-4) of bytes, files and directories, for tracing a
// result to the exact files the two parties exchanged (bundle, adapter). Unlike util/hash.h's
// FNV-1a it is collision-resistant: a party cannot make another file with the same digest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ot {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  // The digest as 64 lower-case hex digits; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const unsigned char* block);
  std::array<std::uint32_t, 8> h_;
  std::array<unsigned char, 64> buf_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const std::string& bytes);

// Same digest as `sha256sum FILE`. Throws ot::Error naming the file if it cannot be read.
std::string file_sha256(const std::string& path);

// A directory's digest: SHA-256 of the `sha256sum` lines ("<hex>  <relative path>\n") of its
// regular files, recursively, sorted by relative path (byte order). The same as
//   (cd DIR && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) | sha256sum
std::string directory_sha256(const std::string& dir);

}  // namespace ot
