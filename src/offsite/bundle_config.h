// offsite/bundle_config.h: the torch-free half of loading bundles and adapters: validating
// the JSON they carry before any tensor is touched. Defines parse_adapter_config (the
// offsite adapter's offsite_adapter.json) and parse_peft_lora_config (a PEFT LoRA adapter's
// adapter_config.json); the bundle config.json's `offsite` section, which every
// model loader reads, is model/offsite_section.h. Kept free of LibTorch
// so that fuzz targets (tests/fuzz/) compile it alone with clang and sanitizers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ot {

// The offsite adapter's file names. Adapters written before the metadata had a name of its
// own carry it as adapter_config.json, PEFT's name; load_adapter still reads those.
inline constexpr const char* kAdapterConfigFile = "offsite_adapter.json";
inline constexpr const char* kLegacyAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterTensorsFile = "adapter.safetensors";
// PEFT's file names for a saved adapter.
inline constexpr const char* kPeftConfigFile = "adapter_config.json";
inline constexpr const char* kPeftTensorsFile = "adapter_model.safetensors";

// Parses offsite_adapter.json text (`path` names the file in messages) and checks what
// loading and plugging in rely on: a JSON object with "format": "offsite-adapter", a string
// "model_type", a non-negative integer "num_original_layers", a string "fingerprint", and,
// when present, "blocks" as non-negative integers below num_original_layers, "includes_head"
// as a boolean and "peft" as an object. Throws ot::Error naming the file and key otherwise.
nlohmann::json parse_adapter_config(const std::string& text, const std::string& path);

// Whether parsed JSON is a PEFT adapter config (it has "peft_type"); how load_adapter tells
// a PEFT adapter_config.json from an offsite one of the old name.
bool is_peft_config(const nlohmann::json& c);

// What a PEFT LoRA adapter_config.json says, as far as merging relies on it.
struct PeftLoraConfig {
  int64_t r = 0;
  double lora_alpha = 0;
  bool use_rslora = false;             // scaling alpha / sqrt(r) instead of alpha / r
  bool fan_in_fan_out = false;
  std::vector<std::string> target_modules;  // module names matched as PEFT does: equal or a '.'-suffix
  std::string target_regex;                 // target_modules given as one string: a full-match regex
  std::vector<int64_t> layers_to_transform; // empty: every layer
  std::string base_model_name_or_path;
  nlohmann::json raw;
  double scaling() const;
};

// Parses a PEFT adapter_config.json and accepts only what merges as plain LoRA: "peft_type"
// "LORA", a positive integer "r", a finite "lora_alpha", "target_modules" (a non-empty list
// of names or a regex string), "bias" "none", no "modules_to_save", no DoRA, no per-module
// rank_pattern / alpha_pattern, no layer_replication, "layers_to_transform" absent, null, a non-negative integer
// or a list of them. Throws ot::Error naming `path` and the key otherwise.
PeftLoraConfig parse_peft_lora_config(const std::string& text, const std::string& path);

}  // namespace ot
