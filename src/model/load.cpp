// model/load.cpp: see load.h.
#include "model/load.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "checkpoint/hf_checkpoint.h"
#include "model/harmonizer.h"
#include "model/low_rank.h"
#include "model/mlp_channels.h"
#include "model/offsite_section.h"
#include "model/peft.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

DecoderLM build_model(const ModelConfig& config, const LoadOptions& opts) {
  DecoderLM model(config);
  model->to(opts.device, opts.dtype);
  return model;
}

namespace {

ModelConfig read_config(const std::string& dir, nlohmann::json& cfg_json) {
  OT_REQUIRE(dir_exists(dir), dir, ": model directory does not exist");
  cfg_json = load_hf_config(dir);
  return parse_model_config(cfg_json, path_join(dir, "config.json"));
}

}  // namespace

void shape_from_config(BlockModelImpl& model, const nlohmann::json& cfg_json, const std::string& dir) {
  const ModelConfig config = model.config();
  const std::string source = path_join(dir, "config.json");
  // Offsite bundles record which original block each of their blocks came from; blocks
  // are built with their original index (GPT-2 can scale attention by it).
  std::vector<int64_t> o = bundle_block_origin(cfg_json, model.num_blocks(), source);
  if (!o.empty()) {
    std::vector<std::shared_ptr<BlockBase>> blocks;
    for (int64_t b : o) blocks.push_back(make_block(config, b));
    model.set_blocks(std::move(blocks), std::move(o));
  }
  // Blocks replaced by harmonizers (layer replacement): built as such, under the same origin.
  const std::vector<int64_t> harmonizers = bundle_harmonizer_ranks(cfg_json, model.num_blocks(), config.hidden_size, source);
  if (std::count(harmonizers.begin(), harmonizers.end(), 0) != static_cast<int64_t>(harmonizers.size())) {
    std::vector<std::shared_ptr<BlockBase>> blocks;
    for (int64_t b = 0; b < model.num_blocks(); ++b) {
      const int64_t r = harmonizers[static_cast<size_t>(b)];
      blocks.push_back(r > 0 ? make_harmonizer(config, r) : model.block_ptr(b));
    }
    model.set_blocks(std::move(blocks), model.block_origin());
  }
  // Blocks whose MLP channels were pruned: shaped to their stored widths.
  const std::vector<int64_t> widths = bundle_mlp_channels(cfg_json, model.num_blocks(), config.intermediate_size, source);
  for (size_t b = 0; b < widths.size(); ++b) {
    BlockBase& block = model.block(static_cast<int64_t>(b));
    if (as_harmonizer(block) != nullptr) {
      OT_REQUIRE(widths[b] == config.intermediate_size, source, ": offsite.mlp_channels: block ", b,
                 " is a harmonizer, which has no pruned MLP (expected ", config.intermediate_size, ", got ", widths[b], ")");
      continue;
    }
    if (widths[b] == mlp_width(block, config)) continue;
    std::vector<int64_t> first(static_cast<size_t>(widths[b]));
    std::iota(first.begin(), first.end(), 0);
    keep_mlp_channels(block, config, first);
  }
  // Attention projections stored as low-rank factors (rank compression).
  const auto ranks = bundle_svd_ranks(cfg_json, model.num_blocks(), source);
  for (size_t b = 0; b < ranks.size(); ++b)
    for (const auto& [name, rank] : ranks[b]) {
      auto p = find_projection(model.block(static_cast<int64_t>(b)), name, source + ": offsite.svd_ranks");
      OT_REQUIRE(rank <= std::min(p->in_features, p->out_features), source, ": offsite.svd_ranks: block ", b, " '",
                 name, "': rank ", rank, " exceeds the projection's ", std::min(p->in_features, p->out_features));
      p->make_low_rank(rank);
    }
  // Bottleneck adapters saved with the model (they cannot be merged into its weights).
  if (cfg_json.contains(kPeftConfigKey)) {
    const auto& pj = cfg_json[kPeftConfigKey];
    PeftOptions po = peft_from_json(pj, source);
    std::vector<int64_t> blocks = pj.value("blocks", std::vector<int64_t>{});
    apply_peft(model, blocks, po);
  }
}

void make_plain(BlockModelImpl& model) {
  const ModelConfig config = model.config();
  for (int64_t b = 0; b < model.num_blocks(); ++b) {
    BlockBase& block = model.block(b);
    OT_REQUIRE(as_harmonizer(block) == nullptr, "block ", b, " (original block ", model.block_origin().at(static_cast<size_t>(b)),
               ") is a harmonizer, a module transformers has no layer for; a plain checkpoint cannot hold it");
    for (const auto& named : attention_projections(block, config)) named.second->densify();
    restore_mlp_width(block, config, config.intermediate_size);
  }
  if (config.raw.contains("offsite")) {
    nlohmann::json section = config.raw["offsite"];
    section.erase("svd_ranks");
    section.erase("mlp_channels");
    model.set_config_entry("offsite", section);
  }
}

namespace {

// The structure config.json describes, then the weights, for either kind of model.
template <class Holder>
void fill(Holder& model, const nlohmann::json& cfg_json, const std::string& dir, const LoadOptions& opts) {
  shape_from_config(*model, cfg_json, dir);
  StateDict weights = load_hf_weights(dir);
  // Match the checkpoint's dtype first so same-dtype tensors are adopted without a copy.
  model->to(opts.device, opts.dtype);
  model->load_hf_state_dict(weights, dir, /*strict=*/true);
  model->eval();
}

void save_any(BlockModelImpl& model, const std::string& dir, const nlohmann::json& extra_config) {
  nlohmann::json cfg = model_config_to_json(model.config());
  for (auto it = extra_config.begin(); it != extra_config.end(); ++it) cfg[it.key()] = it.value();
  cfg["torch_dtype"] = model.dtype() == c10::kFloat      ? "float32"
                       : model.dtype() == c10::kBFloat16 ? "bfloat16"
                       : model.dtype() == c10::kHalf     ? "float16"
                                                         : "float32";
  save_hf_checkpoint(dir, cfg, model.hf_state_dict());
}

}  // namespace

DecoderLM load_model(const std::string& dir, const LoadOptions& opts) {
  nlohmann::json cfg_json;
  ModelConfig config = read_config(dir, cfg_json);
  OT_REQUIRE(!is_vision(config.arch), path_join(dir, "config.json"), ": model_type '", arch_name(config.arch),
             "' is a vision encoder; this command takes a language model (opt, gpt2, bloom, llama, mistral, qwen2, gemma, phi3)");
  // Parameters stay uninitialised (and their pages untouched) until replaced below.
  DecoderLM model(config);
  fill(model, cfg_json, dir, opts);
  return model;
}

VisionEncoder load_vision_model(const std::string& dir, const LoadOptions& opts) {
  nlohmann::json cfg_json;
  ModelConfig config = read_config(dir, cfg_json);
  OT_REQUIRE(is_vision(config.arch), path_join(dir, "config.json"), ": model_type '", arch_name(config.arch),
             "' is a language model; this command takes a vision encoder (vit, clip_vision_model, clip)");
  VisionEncoder model(config);
  fill(model, cfg_json, dir, opts);
  return model;
}

bool is_vision_model_dir(const std::string& dir) {
  nlohmann::json cfg_json;
  return is_vision(read_config(dir, cfg_json).arch);
}

void save_model(DecoderLM& model, const std::string& dir, const nlohmann::json& extra_config) {
  save_any(*model, dir, extra_config);
}

void save_model(VisionEncoder& model, const std::string& dir, const nlohmann::json& extra_config) {
  save_any(*model, dir, extra_config);
}

}  // namespace ot
