// offsite/bundle_config.cpp: see bundle_config.h. Torch-free.
#include "offsite/bundle_config.h"

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

}  // namespace ot
