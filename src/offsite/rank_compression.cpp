// offsite/rank_compression.cpp: see rank_compression.h.
#include "offsite/rank_compression.h"

#include <map>

#include "model/harmonizer.h"
#include "model/low_rank.h"
#include "util/error.h"

namespace ot {

nlohmann::json compress_emulator_ranks(BlockModelImpl& bundle, const OffsiteLayout& layout, double spec) {
  OT_REQUIRE(spec > 0.0, "--svd: expected a rank >= 1 or an energy fraction in (0, 1), got ", spec);
  const ModelConfig& cfg = bundle.config();
  std::map<const BlockBase*, nlohmann::json> done;  // repeated blocks: factorized once
  nlohmann::json ranks = nlohmann::json::array();
  for (int64_t j = 0; j < bundle.num_blocks(); ++j) {
    BlockBase& block = bundle.block(j);
    if (layout.is_adapter(layout.block_origin.at(static_cast<size_t>(j))) || as_harmonizer(block) != nullptr) {
      ranks.push_back(nlohmann::json::object());
      continue;
    }
    auto it = done.find(&block);
    if (it == done.end()) {
      nlohmann::json r = nlohmann::json::object();
      for (const auto& [name, p] : attention_projections(block, cfg)) {
        const int64_t rank = rank_for(p->singular_values(), spec);
        p->factorize(rank);
        r[name] = rank;
      }
      it = done.emplace(&block, r).first;
    }
    ranks.push_back(it->second);
  }
  return ranks;
}

}  // namespace ot
