// util/hash.h: FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211), the
// content hash behind cache keys and run ids: fast, stable across platforms and builds.
// Not for security.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ot {

constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ULL;

// Chained through `h`: fnv1a(b, fnv1a(a)) hashes a then b.
inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnvOffsetBasis) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}
inline uint64_t fnv1a(const std::string& s, uint64_t h = kFnvOffsetBasis) { return fnv1a(s.data(), s.size(), h); }

// The first `digits` (1..16) lower-case hex digits of `h`, e.g. run ids.
inline std::string hex_digits(uint64_t h, int digits = 16) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, static_cast<size_t>(digits < 1 ? 1 : digits > 16 ? 16 : digits));
}

}  // namespace ot
