// model/shapes.h: config.json contents of well-known model sizes (OPT and GPT-2 families),
// so benchmarks can build a model of the right shape without downloading weights.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ot {

// "opt-125m", "opt-1.3b", "opt-6.7b", "gpt2", "gpt2-xl". Throws ot::Error listing the
// known names otherwise.
nlohmann::json named_shape(const std::string& name);
std::vector<std::string> named_shapes();

}  // namespace ot
