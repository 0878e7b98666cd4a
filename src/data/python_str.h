// data/python_str.h: Python's str semantics where the evaluation harness's text processing
// depends on them (lm-eval and datasets work on decoded str, we on UTF-8 bytes): which code
// points str.isspace() accepts, str.strip(), str.capitalize() on ASCII text, and a lossless
// round trip between UTF-8 and code points (an invalid byte b becomes U+DC00+b, as Python's
// surrogateescape does). Decoding is tokenizer/utf8.h's strict one.
#pragma once

#include <cstdint>
#include <string>

namespace ot {

bool is_python_space(uint32_t code_point);             // str.isspace() of one character

std::u32string to_code_points(const std::string& utf8);  // surrogateescape for invalid bytes
std::string to_utf8(const std::u32string& code_points);  // the inverse of to_code_points

std::u32string python_strip(const std::u32string& text);  // str.strip()
std::string python_strip(const std::string& text);        // str.strip() of UTF-8 text
bool is_python_blank(const std::string& text);            // text.strip() == ""
std::string python_capitalize_ascii(const std::string& text);  // str.capitalize(), ASCII letters

}  // namespace ot
