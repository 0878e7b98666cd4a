// model/offsite_section.h: the readers of the `offsite` section of a model's config.json,
// which a bundle (an emulator issued by the model owner) carries: the original index of each
// stored block (block_origin) and the depth of the model it came from (num_original_layers).
// Every model loader calls them, so they live with the model; torch-free, so that fuzz targets
// (tests/fuzz/) compile them alone with clang and sanitizers.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ot {

// Whether a config.json is an offsite bundle's: it carries the `offsite` section the model
// owner writes.
bool is_offsite_bundle(const nlohmann::json& config_json);

// The `offsite.block_origin` list of a bundle's config.json: empty when the config has no
// `offsite` section or the section no block_origin; otherwise `num_blocks` non-negative
// integers. `source` names config.json in messages. Also checks that the section is an
// object and its fingerprint, if any, a string (load_model calls this for every model).
std::vector<int64_t> bundle_block_origin(const nlohmann::json& config, int64_t num_blocks,
                                         const std::string& source);

// `offsite.mlp_channels` of a bundle's config.json (its blocks' MLP widths after channel
// pruning, offsite/channel_pruning.h): empty when absent; otherwise `num_blocks` integers in
// [1, intermediate_size].
std::vector<int64_t> bundle_mlp_channels(const nlohmann::json& config, int64_t num_blocks, int64_t intermediate_size,
                                         const std::string& source);

// `offsite.svd_ranks` of a bundle's config.json (rank compression, offsite/
// rank_compression.h): empty when absent; otherwise one object per block mapping projection
// module names (inside the block) to positive ranks; blocks left dense map nothing.
std::vector<std::map<std::string, int64_t>> bundle_svd_ranks(const nlohmann::json& config, int64_t num_blocks,
                                                             const std::string& source);

// `offsite.harmonizer_ranks` of a bundle's config.json (layer replacement, model/harmonizer.h):
// empty when absent; otherwise one integer per block in [0, hidden_size], the rank of the
// harmonizer the block is, or 0 for a block of the model's own kind.
std::vector<int64_t> bundle_harmonizer_ranks(const nlohmann::json& config, int64_t num_blocks, int64_t hidden_size,
                                             const std::string& source);

// `offsite.num_original_layers` of a bundle's config.json, or `fallback` when the config
// has no `offsite` section or the section lacks the key; a present value must be a
// positive integer.
int64_t bundle_num_original_layers(const nlohmann::json& config, int64_t fallback,
                                   const std::string& source);

}  // namespace ot
