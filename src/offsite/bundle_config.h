// offsite/bundle_config.h: the torch-free half of loading bundles and adapters: validating
// the JSON they carry before any tensor is touched. Defines parse_adapter_config (the
// adapter's adapter_config.json); the bundle config.json's `offsite` section, which every
// model loader reads, is model/offsite_section.h. Kept free of LibTorch
// so that fuzz targets (tests/fuzz/) compile it alone with clang and sanitizers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ot {

// Parses adapter_config.json text (`path` names the file in messages) and checks what
// loading and plugging in rely on: a JSON object with "format": "offsite-adapter", a string
// "model_type", a non-negative integer "num_original_layers", a string "fingerprint", and,
// when present, "blocks" as non-negative integers below num_original_layers, "includes_head"
// as a boolean and "peft" as an object. Throws ot::Error naming the file and key otherwise.
nlohmann::json parse_adapter_config(const std::string& text, const std::string& path);

}  // namespace ot
