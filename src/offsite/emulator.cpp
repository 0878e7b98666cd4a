// offsite/emulator.cpp: see emulator.h.
#include "offsite/emulator.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <set>

#include "model/harmonizer.h"
#include "model/mlp_channels.h"
#include "offsite/layer_selection.h"
#include "util/error.h"

namespace ot {

std::vector<int64_t> OffsiteLayout::adapter_blocks() const {
  std::vector<int64_t> a;
  for (int64_t i = 0; i < bottom; ++i) a.push_back(i);
  for (int64_t i = num_original - top; i < num_original; ++i) a.push_back(i);
  return a;
}

bool OffsiteLayout::is_adapter(int64_t i) const { return i < bottom || i >= num_original - top; }

std::vector<int64_t> select_middle_blocks(int64_t m, int64_t k, const std::string& strategy) {
  if (strategy == "uniform") return uniform_layer_indices(m, k);
  if (strategy == "floor") return floor_layer_indices(m, k);
  if (strategy == "cka")
    fail("--strategy cka: needs calibration activations (use the CKA selector with a corpus)");
  if (!strategy.empty() && (std::isdigit(static_cast<unsigned char>(strategy[0])) || strategy.find(',') != std::string::npos)) {
    auto idx = parse_layer_list(strategy, m, "--strategy");
    OT_REQUIRE(static_cast<int64_t>(idx.size()) == k, "--strategy: the index list has ", idx.size(),
               " entries but --emulator-layers is ", k);
    return idx;
  }
  fail("--strategy: '", strategy, "' is not a strategy (expected uniform, floor, cka or an index list like 0,3,5)");
}

OffsiteLayout make_layout(int64_t n, const EmulatorOptions& o, const std::vector<int64_t>& kept) {
  const int64_t k = static_cast<int64_t>(kept.size());
  check_offsite_split(n, o.bottom, o.top, k);
  OffsiteLayout L;
  L.num_original = n;
  L.bottom = o.bottom;
  L.top = o.top;
  L.middle_kept = kept;
  L.head = o.train_head;
  const int64_t m = n - o.bottom - o.top;
  for (int64_t i = 0; i < o.bottom; ++i) L.block_origin.push_back(i);
  if (o.repeat) {
    // CRaSh sharing: every middle position holds its nearest kept block (ties: lower).
    for (int64_t p = 0; p < m; ++p) {
      int64_t best = kept[0];
      for (int64_t c : kept)
        if (std::llabs(c - p) < std::llabs(best - p)) best = c;
      L.block_origin.push_back(o.bottom + best);
    }
  } else {
    for (int64_t c : kept) L.block_origin.push_back(o.bottom + c);
  }
  for (int64_t i = n - o.top; i < n; ++i) L.block_origin.push_back(i);
  return L;
}

std::shared_ptr<BlockBase> copy_block(const ModelConfig& cfg, BlockBase& src, int64_t layer_index) {
  torch::NoGradGuard ng;
  std::shared_ptr<BlockBase> dst;
  if (HarmonizerBlock* h = as_harmonizer(src)) {
    dst = make_harmonizer(cfg, h->rank());
  } else {
    dst = make_block(cfg, layer_index);
    if (const int64_t width = mlp_width(src, cfg); width != mlp_width(*dst, cfg)) {  // channel-pruned
      std::vector<int64_t> first(static_cast<size_t>(width));
      std::iota(first.begin(), first.end(), 0);
      keep_mlp_channels(*dst, cfg, first);
    }
  }
  auto sp = src.named_parameters(true);
  auto dp = dst->named_parameters(true);
  OT_REQUIRE(sp.size() == dp.size(), "copy_block: parameter sets differ");
  for (auto& item : dp) {
    const at::Tensor* s = sp.find(item.key());
    OT_REQUIRE(s != nullptr, "copy_block: missing parameter ", item.key());
    item.value().set_data(s->detach().clone());
    item.value().set_requires_grad(s->requires_grad());
  }
  return dst;
}

void magnitude_prune(BlockBase& block, double ratio) {
  OT_REQUIRE(ratio >= 0.0 && ratio < 1.0, "--prune: expected a ratio in [0, 1), got ", ratio);
  if (ratio == 0.0) return;
  torch::NoGradGuard ng;
  for (auto& p : block.parameters()) {
    if (p.dim() <= 1) continue;
    const int64_t k = static_cast<int64_t>(double(p.numel()) * ratio);  // Python int(): truncation
    if (k < 1) continue;
    auto mag = p.abs();
    auto thr = std::get<0>(mag.flatten().to(torch::kFloat).kthvalue(k));
    p.mul_((mag.to(torch::kFloat) >= thr).to(p.scalar_type()));
  }
}

void quantize_uniform(BlockBase& block, int bits) {
  OT_REQUIRE(bits >= 1 && bits <= 16, "--quantize: expected 1 to 16 bits, got ", bits);
  torch::NoGradGuard ng;
  for (auto& p : block.parameters()) {
    if (p.dim() <= 1) continue;
    auto w = p.to(torch::kFloat);
    auto mx = w.max(), mn = w.min();
    auto zp = (mx + mn) / 2;
    auto scale = (mx - mn) / (std::pow(2.0, bits) - 1.0);
    if (scale.item<float>() == 0.0f) continue;  // constant tensor: already exact
    p.copy_((torch::round((w - zp) / scale) * scale + zp).to(p.scalar_type()));
  }
}

std::shared_ptr<BlockModelImpl> build_bundle_module(BlockModelImpl& full, const OffsiteLayout& layout,
                                                    const EmulatorOptions& o) {
  torch::NoGradGuard ng;
  OT_REQUIRE(full.num_blocks() == layout.num_original, "bundle: model has ", full.num_blocks(),
             " blocks but the layout was made for ", layout.num_original);
  ModelConfig cfg = full.config();
  std::shared_ptr<BlockModelImpl> bundle;
  if (is_vision(cfg.arch)) bundle = std::make_shared<VisionEncoderImpl>(cfg);
  else bundle = std::make_shared<DecoderLMImpl>(cfg);
  bundle->to(full.device(), full.dtype());
  // Embeddings and head: copy every non-block parameter.
  auto src = full.named_parameters(true);
  for (auto& item : bundle->named_parameters(true)) {
    if (item.key().rfind("blocks.", 0) == 0) continue;
    const at::Tensor* s = src.find(item.key());
    OT_REQUIRE(s != nullptr, "bundle: missing parameter ", item.key());
    item.value().set_data(s->detach().clone());
  }
  // Blocks: adapter blocks copied as they are, emulator blocks copied and compressed.
  // With repeat, positions sharing an original block share one compressed copy.
  std::vector<std::shared_ptr<BlockBase>> blocks;
  std::map<int64_t, std::shared_ptr<BlockBase>> emulator_copies;
  for (size_t j = 0; j < layout.block_origin.size(); ++j) {
    int64_t orig = layout.block_origin[j];
    if (layout.is_adapter(orig)) {
      blocks.push_back(copy_block(cfg, full.block(orig), orig));
      continue;
    }
    auto it = emulator_copies.find(orig);
    if (it == emulator_copies.end()) {
      auto b = copy_block(cfg, full.block(orig), orig);
      if (o.prune_ratio > 0.0) magnitude_prune(*b, o.prune_ratio);
      if (o.quantize_bits > 0) quantize_uniform(*b, o.quantize_bits);
      it = emulator_copies.emplace(orig, b).first;
    }
    blocks.push_back(it->second);
  }
  bundle->set_blocks(std::move(blocks), layout.block_origin);
  bundle->set_config_entry("offsite", offsite_section(layout, o, model_fingerprint(full)));
  bundle->eval();
  return bundle;
}

DecoderLM build_bundle(DecoderLM& full, const OffsiteLayout& layout, const EmulatorOptions& o) {
  return DecoderLM(std::dynamic_pointer_cast<DecoderLMImpl>(build_bundle_module(*full, layout, o)));
}

VisionEncoder build_bundle(VisionEncoder& full, const OffsiteLayout& layout, const EmulatorOptions& o) {
  return VisionEncoder(std::dynamic_pointer_cast<VisionEncoderImpl>(build_bundle_module(*full, layout, o)));
}

nlohmann::json offsite_section(const OffsiteLayout& L, const EmulatorOptions& o, const std::string& fp) {
  nlohmann::json s;
  s["format_version"] = 1;
  s["num_original_layers"] = L.num_original;
  s["adapter"] = {{"bottom", L.bottom}, {"top", L.top}, {"blocks", L.adapter_blocks()}, {"head", L.head}};
  std::vector<int64_t> kept;
  for (int64_t c : L.middle_kept) kept.push_back(L.bottom + c);
  s["emulator"] = {{"strategy", o.strategy}, {"layers", static_cast<int64_t>(L.middle_kept.size())},
                   {"kept_blocks", kept},    {"repeat", o.repeat},
                   {"prune_ratio", o.prune_ratio}, {"quantize_bits", o.quantize_bits}};
  if (o.svd > 0.0) s["emulator"]["svd"] = o.svd;
  if (o.prune_channels > 0.0)
    s["emulator"]["channel_pruning"] = {{"ratio", o.prune_channels}, {"score", o.channel_score},
                                        {"gradot_lambda", o.gradot_lambda}};
  s["block_origin"] = L.block_origin;
  s["fingerprint"] = fp;
  return s;
}

OffsiteLayout layout_from_section(const nlohmann::json& s, int64_t bundle_blocks, const std::string& source) {
  auto need = [&](const nlohmann::json& j, const char* key) -> const nlohmann::json& {
    OT_REQUIRE(j.is_object() && j.contains(key), source, ": offsite section: missing key '", key, "'");
    return j.at(key);
  };
  OffsiteLayout L;
  EmulatorOptions o;
  std::vector<int64_t> kept, adapter_blocks;
  try {
    OT_REQUIRE(need(s, "format_version").get<int64_t>() == 1, source, ": offsite section: format_version ",
               s["format_version"].dump(), " is not one this version reads (1)");
    L.num_original = need(s, "num_original_layers").get<int64_t>();
    const auto& adapter = need(s, "adapter");
    o.bottom = need(adapter, "bottom").get<int64_t>();
    o.top = need(adapter, "top").get<int64_t>();
    adapter_blocks = need(adapter, "blocks").get<std::vector<int64_t>>();
    o.train_head = adapter.value("head", false);  // bundles before the key: head not issued
    const auto& emulator = need(s, "emulator");
    o.repeat = need(emulator, "repeat").get<bool>();
    kept = need(emulator, "kept_blocks").get<std::vector<int64_t>>();
    L.block_origin = need(s, "block_origin").get<std::vector<int64_t>>();
    const std::string fp = need(s, "fingerprint").get<std::string>();
    OT_REQUIRE(fp.size() == 16 && fp.find_first_not_of("0123456789abcdef") == std::string::npos, source,
               ": offsite section: fingerprint '", fp, "' is not 16 hexadecimal digits");
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": offsite section: malformed (", e.what(), ")");
  }
  OT_REQUIRE(L.num_original >= 2 && L.num_original <= 100000, source, ": offsite section: num_original_layers ",
             L.num_original, " is not a model depth");
  OT_REQUIRE(static_cast<int64_t>(L.block_origin.size()) == bundle_blocks, source,
             ": offsite section maps ", L.block_origin.size(), " blocks but the checkpoint has ", bundle_blocks);
  for (int64_t b : L.block_origin)
    OT_REQUIRE(b >= 0 && b < L.num_original, source, ": offsite section: block index ", b,
               " outside the original ", L.num_original, " blocks");
  OT_REQUIRE(o.bottom >= 0 && o.top >= 0 && o.bottom < L.num_original && o.top < L.num_original - o.bottom, source,
             ": offsite section: adapter bottom ", o.bottom, " and top ", o.top, " do not fit ", L.num_original, " blocks");
  // The block map must be exactly what the recorded split and kept middle blocks give.
  std::vector<int64_t> middle;
  for (int64_t c : kept) {
    OT_REQUIRE(c >= o.bottom && c < L.num_original - o.top, source, ": offsite section: kept block ", c,
               " is not a middle block (", o.bottom, " to ", L.num_original - o.top - 1, ")");
    OT_REQUIRE(middle.empty() || c - o.bottom > middle.back(), source,
               ": offsite section: kept_blocks must be increasing without repeats");
    middle.push_back(c - o.bottom);
  }
  try {
    check_offsite_split(L.num_original, o.bottom, o.top, static_cast<int64_t>(middle.size()));
  } catch (const Error& e) {
    fail(source, ": offsite section: ", e.what());
  }
  OffsiteLayout expected = make_layout(L.num_original, o, middle);
  OT_REQUIRE(expected.block_origin == L.block_origin, source,
             ": offsite section: block_origin does not follow from the adapter split and kept_blocks "
             "(the bundle was altered or damaged)");
  OT_REQUIRE(expected.adapter_blocks() == adapter_blocks, source,
             ": offsite section: adapter.blocks does not match adapter.bottom and adapter.top");
  return expected;
}

std::string fingerprint_of(const ModelConfig& c, const StateDict& table, const std::string& source) {
  // FNV-1a 64 over the architecture numbers and the token table's bytes.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const void* data, size_t n) {
    auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  };
  std::string arch = arch_name(c.arch);
  mix(arch.data(), arch.size());
  for (int64_t v : {c.vocab_size, c.hidden_size, c.num_heads, c.num_kv_heads, c.intermediate_size})
    mix(&v, sizeof v);
  const bool vision = is_vision(c.arch);
  if (vision)
    for (int64_t v : {c.image_size, c.patch_size, c.num_channels}) mix(&v, sizeof v);
  // The input table: token embeddings, or a vision encoder's patch projection.
  const std::string key = [&] {
    for (const auto& kv : table) {
      const std::string& k = kv.first;
      if (!vision && (k.find("embed_tokens.weight") != std::string::npos || k.find("wte.weight") != std::string::npos ||
                      k.find("word_embeddings.weight") != std::string::npos))
        return k;
      if (vision && (k.find("patch_embeddings.projection.weight") != std::string::npos ||
                     k.find("patch_embedding.weight") != std::string::npos))
        return k;
    }
    return std::string();
  }();
  OT_REQUIRE(!key.empty(), source, ": fingerprint: no ", vision ? "patch projection" : "token embedding table",
             " found");
  auto t = table.at(key).to(torch::kCPU, torch::kFloat).contiguous();
  mix(t.data_ptr(), static_cast<size_t>(t.numel()) * sizeof(float));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string model_fingerprint(BlockModelImpl& model) {
  torch::NoGradGuard ng;
  return fingerprint_of(model.config(), model.hf_state_dict(), "model");
}

}  // namespace ot
