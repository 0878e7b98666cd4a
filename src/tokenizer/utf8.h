// tokenizer/utf8.h: small UTF-8 helpers the tokenizers share: strict validation of one
// sequence (the same rules PCRE2 applies: no overlongs, no surrogates, <= U+10FFFF),
// encoding a code point, and iterating the code points of a string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ot::utf8 {

// Length (1..4) of the valid UTF-8 sequence starting at p, or 0 if it is not valid.
inline std::size_t valid_sequence_length(const char* p, std::size_t avail) {
  if (avail == 0) return 0;
  const auto* s = reinterpret_cast<const unsigned char*>(p);
  const unsigned char c = s[0];
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t i) { return i < avail && (s[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;  // overlong
    if (c == 0xED && s[1] > 0x9F) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;  // overlong
    if (c == 0xF4 && s[1] > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

inline std::string encode(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// Calls fn(code_point, ptr, length) for each character; an invalid byte is reported as
// code point 0xFFFFFFFF with length 1 so callers can keep it verbatim.
template <class Fn>
void for_each_code_point(const std::string& s, Fn&& fn) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = valid_sequence_length(s.data() + i, s.size() - i);
    const auto* u = reinterpret_cast<const unsigned char*>(s.data() + i);
    uint32_t cp;
    switch (n) {
      case 1: cp = u[0]; break;
      case 2: cp = ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu); break;
      case 3: cp = ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu); break;
      case 4:
        cp = ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) | (u[3] & 0x3Fu);
        break;
      default: cp = 0xFFFFFFFFu; n = 1; break;
    }
    fn(cp, s.data() + i, n);
    i += n;
  }
}

}  // namespace ot::utf8
