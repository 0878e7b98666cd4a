// offsite/replace_spec.cpp: see replace_spec.h.
#include "offsite/replace_spec.h"

#include <algorithm>
#include <stdexcept>

#include "util/error.h"

namespace ot {

ReplaceSpec parse_replace_layers(const std::string& text, const std::string& where) {
  ReplaceSpec spec;
  if (text.empty()) return spec;
  if (text.find_first_not_of("0123456789,") == std::string::npos) {
    size_t start = 0;
    while (start <= text.size()) {
      const size_t comma = std::min(text.find(',', start), text.size());
      const std::string item = text.substr(start, comma - start);
      OT_REQUIRE(!item.empty() && item.size() <= 9, where, ": expected block indices like 5,7, got '", text, "'");
      const int64_t b = std::stoll(item);
      OT_REQUIRE(spec.blocks.empty() || b > spec.blocks.back(), where,
                 ": block indices must be strictly increasing, got '", text, "'");
      spec.blocks.push_back(b);
      start = comma + 1;
    }
    return spec;
  }
  size_t used = 0;
  double ratio = 0.0;
  try {
    ratio = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  OT_REQUIRE(used == text.size() && ratio > 0.0 && ratio < 1.0, where,
             ": expected a ratio in (0, 1) of the emulator's blocks or original block indices like 5,7, got '", text,
             "'");
  spec.ratio = ratio;
  return spec;
}

}  // namespace ot
