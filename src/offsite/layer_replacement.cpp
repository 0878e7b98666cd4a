// offsite/layer_replacement.cpp: see layer_replacement.h.
#include "offsite/layer_replacement.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "model/harmonizer.h"
#include "offsite/block_input.h"
#include "util/error.h"

namespace ot {

std::vector<double> block_importance(BlockModelImpl& full, int64_t bottom, int64_t top,
                                     const std::vector<Batch>& batches) {
  OT_REQUIRE(!batches.empty(), "--replace-layers: a ratio needs calibration data to score the blocks "
             "(--calibration CORPUS, or --calibration-images for a vision encoder)");
  torch::NoGradGuard ng;
  const int64_t n = full.num_blocks(), m = n - bottom - top;
  std::vector<double> sum(static_cast<size_t>(m), 0.0);
  int64_t tokens = 0;
  for (const Batch& host : batches) {
    const Batch b = to_device(host, full.device());
    AttentionContext ctx;
    at::Tensor h = embed_batch(full, b, ctx, "--replace-layers");
    // Padding tokens are left out; an image's every token is real.
    const at::Tensor keep = b.attention_mask.defined()
                                ? b.attention_mask.to(torch::kBool).flatten()
                                : torch::ones({h.size(0) * h.size(1)}, h.options().dtype(torch::kBool));
    tokens += keep.sum().item<int64_t>();
    for (int64_t i = 0; i < n - top; ++i) {
      const at::Tensor in = h;
      h = full.run_block(i, h, ctx);
      if (i < bottom) continue;
      auto real = [&](const at::Tensor& t) { return t.reshape({-1, t.size(-1)}).index({keep}).to(torch::kDouble); };
      const at::Tensor cos = torch::cosine_similarity(real(in), real(h), /*dim=*/1, /*eps=*/1e-12);  // (N)
      sum[static_cast<size_t>(i - bottom)] += cos.sum().item<double>();
    }
  }
  OT_REQUIRE(tokens > 0, "--replace-layers: the calibration data holds no real token");
  std::vector<double> importance;
  for (double s : sum) importance.push_back(1.0 - s / double(tokens));
  return importance;
}

std::vector<int64_t> blocks_to_replace(const OffsiteLayout& layout, const ReplaceSpec& spec, int64_t group,
                                       const std::vector<double>& importance) {
  OT_REQUIRE(group >= 1, "--replace-group: expected a group size of 1 or more, got ", group);
  std::vector<int64_t> kept;  // original indices of the emulator blocks, ascending
  for (int64_t c : layout.middle_kept) kept.push_back(layout.bottom + c);
  const int64_t m = layout.num_original - layout.bottom - layout.top;
  OT_REQUIRE(static_cast<int64_t>(layout.block_origin.size()) ==
                 layout.bottom + layout.top + static_cast<int64_t>(kept.size()),
             "--replace-layers: the emulator repeats blocks in place of dropped ones (--repeat); a harmonizer "
             "stands in for one block, so the two do not combine");
  if (!spec.blocks.empty()) {
    for (int64_t b : spec.blocks)
      OT_REQUIRE(std::binary_search(kept.begin(), kept.end(), b), "--replace-layers: block ", b,
                 " is not an emulator block (the emulator keeps original blocks ", [&] {
                   std::string s;
                   for (int64_t k : kept) s += (s.empty() ? "" : ",") + std::to_string(k);
                   return s;
                 }(), ")");
    return spec.blocks;
  }
  OT_REQUIRE(static_cast<int64_t>(importance.size()) == m, "--replace-layers: expected one importance score per "
             "middle block (", m, "), got ", importance.size());
  std::vector<int64_t> replaced;
  for (size_t start = 0; start < kept.size(); start += static_cast<size_t>(group)) {
    std::vector<int64_t> g(kept.begin() + static_cast<std::ptrdiff_t>(start),
                           kept.begin() + static_cast<std::ptrdiff_t>(std::min(kept.size(), start + size_t(group))));
    const auto count = static_cast<size_t>(spec.ratio * double(g.size()) + 0.5);
    std::stable_sort(g.begin(), g.end(), [&](int64_t a, int64_t b) {
      return importance[static_cast<size_t>(a - layout.bottom)] < importance[static_cast<size_t>(b - layout.bottom)];
    });
    replaced.insert(replaced.end(), g.begin(), g.begin() + static_cast<std::ptrdiff_t>(std::min(count, g.size())));
  }
  std::sort(replaced.begin(), replaced.end());
  return replaced;
}

std::vector<int64_t> replace_with_harmonizers(BlockModelImpl& bundle, const std::vector<int64_t>& replaced,
                                              int64_t rank, uint64_t seed) {
  const std::set<int64_t> which(replaced.begin(), replaced.end());
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::shared_ptr<BlockBase>> blocks;
  std::vector<int64_t> ranks;
  for (int64_t j = 0; j < bundle.num_blocks(); ++j) {
    const int64_t origin = bundle.block_origin().at(static_cast<size_t>(j));
    if (!which.count(origin)) {
      blocks.push_back(bundle.block_ptr(j));
      ranks.push_back(0);
      continue;
    }
    auto h = make_harmonizer(bundle.config(), rank);
    h->init(gen);  // drawn on the CPU in float32, then moved: the same start on every device
    h->to(bundle.device(), bundle.dtype());
    blocks.push_back(h);
    ranks.push_back(rank);
  }
  bundle.set_blocks(std::move(blocks), bundle.block_origin());
  return ranks;
}

nlohmann::json layer_replacement_record(const OffsiteLayout& layout, const ReplaceSpec& spec, int64_t group,
                                        int64_t rank, const std::vector<int64_t>& replaced,
                                        const std::vector<double>& importance) {
  nlohmann::json r = {{"replaced_blocks", replaced}, {"rank", rank}};
  if (spec.ratio > 0.0) {
    r["ratio"] = spec.ratio;
    r["group"] = group;
  }
  if (!importance.empty()) {
    nlohmann::json scores = nlohmann::json::object();
    for (size_t i = 0; i < importance.size(); ++i) scores[std::to_string(layout.bottom + int64_t(i))] = importance[i];
    r["importance"] = scores;
  }
  return r;
}

LayerReplacement replace_emulator_layers(BlockModelImpl& full, BlockModelImpl& bundle, const OffsiteLayout& layout,
                                         const EmulatorOptions& o, const std::vector<Batch>& calibration,
                                         uint64_t seed) {
  const ReplaceSpec spec = parse_replace_layers(o.replace_layers, "--replace-layers");
  if (!spec.enabled()) return {};
  const int64_t rank = o.harmonizer_rank > 0 ? o.harmonizer_rank : default_harmonizer_rank(bundle.config());
  OT_REQUIRE(rank <= bundle.config().hidden_size, "--harmonizer-rank: ", rank, " exceeds the hidden size ",
             bundle.config().hidden_size);
  std::vector<double> importance;
  if (spec.needs_importance() || !calibration.empty())
    importance = block_importance(full, layout.bottom, layout.top, calibration);
  const std::vector<int64_t> replaced = blocks_to_replace(layout, spec, o.replace_group, importance);
  LayerReplacement out;
  out.ranks = replace_with_harmonizers(bundle, replaced, rank, seed);
  out.record = layer_replacement_record(layout, spec, o.replace_group, rank, replaced, importance);
  return out;
}

}  // namespace ot
