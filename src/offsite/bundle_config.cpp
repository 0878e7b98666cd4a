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

namespace {
// The `offsite` section, or null when the config has none; anything but an object, or a
// fingerprint that is not a string, is an error.
const nlohmann::json* offsite_section(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object() || !config.contains("offsite")) return nullptr;
  const nlohmann::json& s = config["offsite"];
  OT_REQUIRE(s.is_object(), source, ": key 'offsite': expected an object (the bundle's offsite section), got ",
             s.dump());
  // Read without further checks when the data owner's adapter is extracted (experiment/jobs.cpp).
  OT_REQUIRE(!s.contains("fingerprint") || s["fingerprint"].is_string(), source,
             ": offsite.fingerprint: expected a string, got ", s["fingerprint"].dump());
  return &s;
}
}  // namespace

std::vector<int64_t> bundle_block_origin(const nlohmann::json& config, int64_t num_blocks,
                                         const std::string& source) {
  std::vector<int64_t> o;
  const nlohmann::json* s = offsite_section(config, source);
  if (s == nullptr || !s->contains("block_origin")) return o;
  const nlohmann::json& origin = (*s)["block_origin"];
  OT_REQUIRE(origin.is_array(), source, ": offsite.block_origin: expected an array of non-negative integers, got ",
             origin.dump());
  for (const auto& v : origin) {
    OT_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= 0, source,
               ": offsite.block_origin: expected non-negative integers, got ", v.dump());
    o.push_back(v.get<int64_t>());
  }
  OT_REQUIRE(static_cast<int64_t>(o.size()) == num_blocks, source, ": offsite.block_origin has ",
             o.size(), " entries but the model has ", num_blocks, " blocks");
  return o;
}

int64_t bundle_num_original_layers(const nlohmann::json& config, int64_t fallback,
                                   const std::string& source) {
  const nlohmann::json* s = offsite_section(config, source);
  if (s == nullptr || !s->contains("num_original_layers")) return fallback;
  const nlohmann::json& n = (*s)["num_original_layers"];
  OT_REQUIRE(n.is_number_integer() && n.get<int64_t>() > 0, source,
             ": offsite.num_original_layers: expected a positive integer, got ", n.dump());
  return n.get<int64_t>();
}

}  // namespace ot
