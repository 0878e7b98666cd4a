// offsite/bundle_config.h: the torch-free half of loading bundles and adapters: validating
// the JSON they carry before any tensor is touched. Defines parse_adapter_config (the
// adapter's adapter_config.json) and the readers of a bundle config.json's `offsite`
// section that the loaders use (block_origin, num_original_layers). Kept free of LibTorch
// so that fuzz targets (tests/fuzz/) compile it alone with clang and sanitizers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ot {

// Parses adapter_config.json text (`path` names the file in messages) and checks what
// loading and plugging in rely on: a JSON object with "format": "offsite-adapter", a string
// "model_type", a non-negative integer "num_original_layers", a string "fingerprint", and,
// when present, "blocks" as non-negative integers below num_original_layers, "includes_head"
// as a boolean and "peft" as an object. Throws ot::Error naming the file and key otherwise.
nlohmann::json parse_adapter_config(const std::string& text, const std::string& path);

// The `offsite.block_origin` list of a bundle's config.json: empty when the config has no
// `offsite` section or the section no block_origin; otherwise `num_blocks` non-negative
// integers. `source` names config.json in messages. Also checks that the section is an
// object and its fingerprint, if any, a string (load_model calls this for every model).
std::vector<int64_t> bundle_block_origin(const nlohmann::json& config, int64_t num_blocks,
                                         const std::string& source);

// `offsite.num_original_layers` of a bundle's config.json, or `fallback` when the config
// has no `offsite` section or the section lacks the key; a present value must be a
// positive integer.
int64_t bundle_num_original_layers(const nlohmann::json& config, int64_t fallback,
                                   const std::string& source);

}  // namespace ot
