// tests/fuzz/fuzz_adapter.cpp: libFuzzer target for the torch-free checks of loading an
// adapter directory (offsite/adapter.h load_adapter): offsite_adapter.json through
// parse_adapter_config and adapter.safetensors through the safetensors header parser; the
// same JSON also goes through parse_peft_lora_config, as a PEFT adapter_config.json
// (offsite/peft_lora.h read_peft_lora).
// An accepted config must give plug-in (check_identity, the bottleneck modules) the types
// it reads without further checks: string model_type and fingerprint, integer
// num_original_layers, integer blocks, boolean includes_head, object peft. Input:
// the JSON file, optionally followed by a NUL byte and adapter.safetensors. Any input
// must load or throw ot::Error; anything else escaping, a crash or a sanitizer report is a
// bug. Torch-free.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/safetensors_header.h"
#include "fuzz_common.h"
#include "offsite/bundle_config.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(data, 0, size);
  const std::size_t json_size = nul ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - data) : size;
  try {
    const nlohmann::json c = ot::parse_adapter_config(std::string(text, json_size), "offsite_adapter.json");
    // What plug-in reads unchecked; a type error here escapes and is reported as a crash.
    (void)c.at("model_type").get<std::string>();
    (void)c.at("fingerprint").get<std::string>();
    (void)c.at("num_original_layers").get<std::int64_t>();
    (void)c.value("blocks", std::vector<std::int64_t>{});
    (void)c.value("includes_head", false);
    if (c.contains("peft") && !c.at("peft").is_object()) __builtin_trap();
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  try {
    const ot::PeftLoraConfig p = ot::parse_peft_lora_config(std::string(text, json_size), "adapter_config.json");
    // What merging relies on without further checks.
    if (p.r < 1 || !(p.scaling() == p.scaling())) __builtin_trap();
    if (p.target_modules.empty() == p.target_regex.empty()) __builtin_trap();
    for (std::int64_t l : p.layers_to_transform)
      if (l < 0) __builtin_trap();
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  if (nul) {
    try {
      (void)ot::parse_safetensors_header(text + json_size + 1, size - json_size - 1, "adapter.safetensors");
    } catch (const ot::Error& e) {
      ot::fuzz::rejected(e);
    }
  }
  return 0;
}
