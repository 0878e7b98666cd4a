// offsite/bundle_config.cpp: see bundle_config.h. Torch-free.
#include "offsite/bundle_config.h"

#include <cmath>

#include "util/error.h"

namespace ot {

nlohmann::json parse_adapter_config(const std::string& text, const std::string& path) {
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  OT_REQUIRE(c.is_object(), path, ": expected a JSON object, got ", c.type_name());
  const auto format = c.find("format");
  OT_REQUIRE(format != c.end() && *format == "offsite-adapter", path,
             ": expected \"format\": \"offsite-adapter\"");
  for (const char* k : {"model_type", "num_original_layers", "fingerprint"})
    OT_REQUIRE(c.contains(k), path, ": missing key '", k, "'");
  for (const char* k : {"model_type", "fingerprint"})
    OT_REQUIRE(c[k].is_string(), path, ": key '", k, "': expected a string, got ", c[k].dump());
  const nlohmann::json& n = c["num_original_layers"];
  OT_REQUIRE(n.is_number_integer() && n.get<int64_t>() > 0, path,
             ": key 'num_original_layers': expected a positive integer, got ", n.dump());
  const int64_t layers = n.get<int64_t>();
  if (c.contains("blocks")) {
    const nlohmann::json& b = c["blocks"];
    OT_REQUIRE(b.is_array(), path, ": key 'blocks': expected an array of block indices, got ", b.dump());
    for (const auto& v : b)
      OT_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < layers, path,
                 ": key 'blocks': expected block indices in [0, ", layers, "), got ", v.dump());
  }
  if (c.contains("includes_head"))
    OT_REQUIRE(c["includes_head"].is_boolean(), path, ": key 'includes_head': expected true or false, got ",
               c["includes_head"].dump());
  if (c.contains("peft"))
    OT_REQUIRE(c["peft"].is_object(), path, ": key 'peft': expected an object (the PEFT description), got ",
               c["peft"].dump());
  return c;
}

bool is_peft_config(const nlohmann::json& c) { return c.is_object() && c.contains("peft_type"); }

double PeftLoraConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(double(r)) : lora_alpha / double(r);
}

PeftLoraConfig parse_peft_lora_config(const std::string& text, const std::string& path) {
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  OT_REQUIRE(c.is_object(), path, ": expected a JSON object, got ", c.type_name());
  // A present key of JSON null counts as absent, as PEFT writes its unset options.
  auto has = [&](const char* k) { return c.contains(k) && !c[k].is_null(); };
  OT_REQUIRE(has("peft_type"), path, ": missing key 'peft_type' (expected a PEFT adapter config)");
  OT_REQUIRE(c["peft_type"] == "LORA", path, ": key 'peft_type': expected \"LORA\", got ", c["peft_type"].dump(),
             " (only LoRA adapters can be merged)");
  PeftLoraConfig p;
  p.raw = c;
  for (const char* k : {"r", "lora_alpha", "target_modules"})
    OT_REQUIRE(has(k), path, ": missing key '", k, "'");
  const nlohmann::json& r = c["r"];
  OT_REQUIRE(r.is_number_integer() && r.get<int64_t>() >= 1 && r.get<int64_t>() <= 65536, path,
             ": key 'r': expected a rank in [1, 65536], got ", r.dump());
  p.r = r.get<int64_t>();
  const nlohmann::json& alpha = c["lora_alpha"];
  OT_REQUIRE(alpha.is_number() && std::isfinite(alpha.get<double>()), path,
             ": key 'lora_alpha': expected a finite number, got ", alpha.dump());
  p.lora_alpha = alpha.get<double>();
  for (const char* k : {"use_rslora", "fan_in_fan_out", "use_dora", "inference_mode"})
    OT_REQUIRE(!has(k) || c[k].is_boolean(), path, ": key '", k, "': expected true or false, got ", c[k].dump());
  p.use_rslora = has("use_rslora") && c["use_rslora"].get<bool>();
  p.fan_in_fan_out = has("fan_in_fan_out") && c["fan_in_fan_out"].get<bool>();
  OT_REQUIRE(!has("use_dora") || !c["use_dora"].get<bool>(), path,
             ": key 'use_dora': DoRA adapters are not plain LoRA and cannot be merged here");
  OT_REQUIRE(!has("bias") || c["bias"] == "none", path, ": key 'bias': expected \"none\", got ", c["bias"].dump(),
             " (trained biases are not LoRA factors)");
  OT_REQUIRE(!has("modules_to_save") || (c["modules_to_save"].is_array() && c["modules_to_save"].empty()), path,
             ": key 'modules_to_save': expected null, got ", c["modules_to_save"].dump(),
             " (only LoRA factors are accepted, no fully trained modules)");
  OT_REQUIRE(!has("layer_replication"), path, ": key 'layer_replication': expected null, got ",
             c["layer_replication"].dump(), " (a model with replicated layers is not the model the adapter plugs into)");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    OT_REQUIRE(!has(k) || (c[k].is_object() && c[k].empty()), path, ": key '", k,
               "': expected {} (one rank and alpha for every module), got ", c[k].dump());
  const nlohmann::json& t = c["target_modules"];
  if (t.is_string()) {
    OT_REQUIRE(!t.get<std::string>().empty(), path, ": key 'target_modules': expected a module name list or a regex, got \"\"");
    p.target_regex = t.get<std::string>();
  } else {
    OT_REQUIRE(t.is_array() && !t.empty(), path, ": key 'target_modules': expected a non-empty list of module names, got ",
               t.dump());
    for (const auto& v : t) {
      OT_REQUIRE(v.is_string() && !v.get<std::string>().empty(), path,
                 ": key 'target_modules': expected module names, got ", v.dump());
      p.target_modules.push_back(v.get<std::string>());
    }
  }
  if (has("layers_to_transform")) {
    const nlohmann::json& l = c["layers_to_transform"];
    const nlohmann::json list = l.is_array() ? l : nlohmann::json::array({l});
    for (const auto& v : list) {
      OT_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= 0, path,
                 ": key 'layers_to_transform': expected non-negative layer indices, got ", v.dump());
      p.layers_to_transform.push_back(v.get<int64_t>());
    }
  }
  if (has("base_model_name_or_path")) {
    OT_REQUIRE(c["base_model_name_or_path"].is_string(), path,
               ": key 'base_model_name_or_path': expected a string, got ", c["base_model_name_or_path"].dump());
    p.base_model_name_or_path = c["base_model_name_or_path"].get<std::string>();
  }
  return p;
}

}  // namespace ot
