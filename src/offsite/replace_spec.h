// offsite/replace_spec.h: the value of `--replace-layers` (TOML emulator.replace_layers), which
// says which emulator blocks harmonizers replace (offsite/layer_replacement.h). Torch-free, so
// that the experiment schema checks it where it reads the TOML file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ot {

// A parsed `--replace-layers` value: a ratio in (0, 1), or original block indices.
struct ReplaceSpec {
  double ratio = 0.0;
  std::vector<int64_t> blocks;
  bool enabled() const { return ratio > 0.0 || !blocks.empty(); }
  bool needs_importance() const { return ratio > 0.0; }
};
// "" -> off; "0.5" -> a ratio; "5,7" or "6" (an integer) -> original indices, strictly
// increasing. `where` names the flag or key in errors.
ReplaceSpec parse_replace_layers(const std::string& text, const std::string& where);

}  // namespace ot
