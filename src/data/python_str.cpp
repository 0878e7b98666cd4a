// data/python_str.cpp: see python_str.h. Torch-free.
#include "data/python_str.h"

#include "tokenizer/utf8.h"

namespace ot {

bool is_python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::u32string to_code_points(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  utf8::for_each_code_point(s, [&](uint32_t cp, const char* p, std::size_t) {
    out.push_back(cp == 0xFFFFFFFFu ? 0xDC00u + static_cast<unsigned char>(*p) : cp);
  });
  return out;
}

std::string to_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0xDC80 && c <= 0xDCFF) out.push_back(static_cast<char>(c - 0xDC00));
    else out += utf8::encode(static_cast<uint32_t>(c));
  }
  return out;
}

std::u32string python_strip(const std::u32string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_python_space(s[b])) ++b;
  while (e > b && is_python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string python_strip(const std::string& text) { return to_utf8(python_strip(to_code_points(text))); }

bool is_python_blank(const std::string& text) { return python_strip(to_code_points(text)).empty(); }

std::string python_capitalize_ascii(const std::string& text) {
  std::string s = text;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 0) s[i] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    else s[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return s;
}

}  // namespace ot
