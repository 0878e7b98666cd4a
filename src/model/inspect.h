// model/inspect.h: a description of a checkpoint directory for `ot inspect`: architecture,
// shape, parameter counts by part (embeddings, blocks, head), dtypes and files, and for
// offsite bundles the map from bundle blocks to original blocks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ot {

// Machine-readable description (stable keys).
nlohmann::json inspect_model_dir(const std::string& dir);
// Human-readable rendering of the same.
std::string format_inspection(const nlohmann::json& info);

}  // namespace ot
