// model/offsite_section.cpp: see offsite_section.h. Torch-free.
#include "model/offsite_section.h"

#include "util/error.h"

namespace ot {

bool is_offsite_bundle(const nlohmann::json& config_json) {
  return config_json.is_object() && config_json.contains("offsite");
}

namespace {
// The `offsite` section, or null when the config has none; anything but an object, or a
// fingerprint that is not a string, is an error.
const nlohmann::json* offsite_section(const nlohmann::json& config, const std::string& source) {
  if (!is_offsite_bundle(config)) return nullptr;
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

namespace {

// offsite.<key>: one integer in [lo, hi] per block (empty where the section has no such key).
std::vector<int64_t> per_block_integers(const nlohmann::json& config, const char* key, int64_t num_blocks, int64_t lo,
                                        int64_t hi, const char* one, const char* many, const char* note,
                                        const std::string& source) {
  std::vector<int64_t> values;
  const nlohmann::json* s = offsite_section(config, source);
  if (s == nullptr || !s->contains(key)) return values;
  const nlohmann::json& list = (*s)[key];
  OT_REQUIRE(list.is_array() && static_cast<int64_t>(list.size()) == num_blocks, source, ": offsite.", key,
             ": expected one ", one, " per block (", num_blocks, "), got ", list.dump().substr(0, 200));
  for (const auto& v : list) {
    OT_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi, source, ": offsite.", key,
               ": expected ", many, " in [", lo, ", ", hi, "]", note, ", got ", v.dump());
    values.push_back(v.get<int64_t>());
  }
  return values;
}

}  // namespace

std::vector<int64_t> bundle_mlp_channels(const nlohmann::json& config, int64_t num_blocks, int64_t intermediate_size,
                                         const std::string& source) {
  return per_block_integers(config, "mlp_channels", num_blocks, 1, intermediate_size, "MLP width", "widths", "",
                            source);
}

std::vector<int64_t> bundle_harmonizer_ranks(const nlohmann::json& config, int64_t num_blocks, int64_t hidden_size,
                                             const std::string& source) {
  return per_block_integers(config, "harmonizer_ranks", num_blocks, 0, hidden_size, "rank", "ranks",
                            " (0: the block itself)", source);
}

std::vector<std::map<std::string, int64_t>> bundle_svd_ranks(const nlohmann::json& config, int64_t num_blocks,
                                                             const std::string& source) {
  std::vector<std::map<std::string, int64_t>> ranks;
  const nlohmann::json* s = offsite_section(config, source);
  if (s == nullptr || !s->contains("svd_ranks")) return ranks;
  const nlohmann::json& r = (*s)["svd_ranks"];
  OT_REQUIRE(r.is_array() && static_cast<int64_t>(r.size()) == num_blocks, source,
             ": offsite.svd_ranks: expected one object per block (", num_blocks, "), got ", r.dump().substr(0, 200));
  for (const auto& block : r) {
    OT_REQUIRE(block.is_object(), source, ": offsite.svd_ranks: expected objects of projection -> rank, got ",
               block.dump().substr(0, 200));
    std::map<std::string, int64_t> m;
    for (auto it = block.begin(); it != block.end(); ++it) {
      OT_REQUIRE(it.value().is_number_integer() && it.value().get<int64_t>() >= 1, source, ": offsite.svd_ranks: '",
                 it.key(), "': expected a positive integer rank, got ", it.value().dump());
      m[it.key()] = it.value().get<int64_t>();
    }
    ranks.push_back(std::move(m));
  }
  return ranks;
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
