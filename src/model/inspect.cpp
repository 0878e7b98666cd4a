// model/inspect.cpp: see inspect.h.
#include "model/inspect.h"

#include <torch/torch.h>

#include <iomanip>
#include <map>
#include <sstream>

#include "checkpoint/hf_checkpoint.h"
#include "model/decoder_lm.h"
#include "model/harmonizer.h"
#include "model/load.h"
#include "model/low_rank.h"
#include "model/mlp_channels.h"
#include "model/offsite_section.h"
#include "model/vision_encoder.h"
#include "util/device.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

nlohmann::json inspect_model_dir(const std::string& dir) {
  OT_REQUIRE(dir_exists(dir), dir, ": model directory does not exist");
  nlohmann::json cfg_json = load_hf_config(dir);
  ModelConfig cfg = parse_model_config(cfg_json, path_join(dir, "config.json"));
  StateDict weights = load_hf_weights(dir);  // memory-mapped: cheap even for large models
  // Uninitialised: only shapes are needed.
  std::shared_ptr<BlockModelImpl> model;
  if (is_vision(cfg.arch)) model = std::make_shared<VisionEncoderImpl>(cfg);
  else model = std::make_shared<DecoderLMImpl>(cfg);
  shape_from_config(*model, cfg_json, dir);
  model->load_hf_state_dict(weights, dir, /*strict=*/true);

  nlohmann::json j;
  j["directory"] = dir;
  j["model_type"] = model_type_name(cfg);
  j["layers"] = cfg.num_layers;
  j["hidden_size"] = cfg.hidden_size;
  j["heads"] = cfg.num_heads;
  j["kv_heads"] = cfg.num_kv_heads;
  j["intermediate_size"] = cfg.intermediate_size;
  if (is_vision(cfg.arch)) {
    j["image_size"] = cfg.image_size;
    j["patch_size"] = cfg.patch_size;
    j["num_channels"] = cfg.num_channels;
    j["patches"] = cfg.num_patches();
    if (cfg.arch == Arch::kViT) j["final_norm"] = cfg.vit_final_norm;
    if (cfg.num_labels > 0) j["head"] = {{"kind", "classifier"}, {"labels", cfg.num_labels}};
    else if (cfg.projection_dim > 0) j["head"] = {{"kind", "projection"}, {"dim", cfg.projection_dim}};
    else j["head"] = {{"kind", cfg.vit_pooler ? "pooler" : "class token"}};
  } else {
    j["vocab_size"] = cfg.vocab_size;
    j["max_positions"] = cfg.max_positions;
    j["tied_head"] = cfg.tie_word_embeddings;
    if (is_rope_decoder(cfg.arch)) j["head_dim"] = cfg.head_dim;
    if (cfg.sliding_window > 0) {
      // A bundle's blocks keep the layer index they had in the original model.
      std::vector<int64_t> origin = bundle_block_origin(cfg_json, cfg.num_layers, path_join(dir, "config.json"));
      int64_t sliding = 0;
      for (int64_t i = 0; i < cfg.num_layers; ++i)
        sliding += cfg.layer_slides(origin.empty() ? i : origin[static_cast<size_t>(i)]) ? 1 : 0;
      j["sliding_window"] = {{"window", cfg.sliding_window}, {"blocks", sliding}};
    }
  }
  j["parameters"] = {{"embeddings", model->num_parameters(ModelPart::kEmbeddings)},
                     {"blocks", model->num_parameters(ModelPart::kBlocks)},
                     {"head", model->num_parameters(ModelPart::kHead)},
                     {"total", model->num_parameters(ModelPart::kAll)}};
  std::map<std::string, int64_t> dtypes;
  for (const auto& kv : weights) dtypes[safetensors_dtype_name(kv.second.scalar_type())] += kv.second.numel();
  j["dtypes"] = dtypes;
  WeightFiles wf = find_weight_files(dir);
  j["format"] = wf.format;
  j["files"] = wf.files;
  if (!wf.index.empty()) j["index"] = wf.index;
  if (cfg_json.contains("offsite")) {
    j["offsite"] = cfg_json["offsite"];
    // A bundle's blocks as built: compression makes them differ from the config's shape.
    nlohmann::json blocks = nlohmann::json::array();
    for (int64_t b = 0; b < model->num_blocks(); ++b) {
      BlockBase& block = model->block(b);
      nlohmann::json d = {{"origin", model->block_origin().at(static_cast<size_t>(b))}};
      int64_t params = 0;
      for (const auto& p : block.parameters()) params += p.numel();
      d["parameters"] = params;
      if (const HarmonizerBlock* h = as_harmonizer(block)) {
        d["kind"] = "harmonizer";
        d["rank"] = h->rank();
      } else {
        d["kind"] = "block";
        d["ffn"] = mlp_width(block, cfg);
        nlohmann::json ranks = nlohmann::json::object();
        for (const auto& [name, proj] : attention_projections(block, cfg))
          if (proj->is_low_rank()) ranks[name] = proj->rank();
        if (!ranks.empty()) d["attention_ranks"] = ranks;
      }
      blocks.push_back(d);
    }
    j["blocks"] = blocks;
  }
  return j;
}

namespace {
std::string human(int64_t n) {
  std::ostringstream os;
  if (n >= 1000000000) os << std::fixed << std::setprecision(2) << double(n) / 1e9 << "B";
  else if (n >= 1000000) os << std::fixed << std::setprecision(2) << double(n) / 1e6 << "M";
  else if (n >= 1000) os << std::fixed << std::setprecision(1) << double(n) / 1e3 << "K";
  else os << n;
  return os.str();
}
}  // namespace

std::string format_inspection(const nlohmann::json& j) {
  std::ostringstream os;
  os << "model        " << j["directory"].get<std::string>() << "\n";
  os << "architecture " << j["model_type"].get<std::string>() << ": " << j["layers"] << " blocks, hidden "
     << j["hidden_size"] << ", " << j["heads"] << " heads";
  if (j["kv_heads"] != j["heads"]) os << " (" << j["kv_heads"] << " key/value)";
  os << ", ffn " << j["intermediate_size"];
  if (j.contains("image_size")) {
    os << ", image " << j["image_size"] << " x " << j["image_size"] << " (" << j["num_channels"] << " channels), patch "
       << j["patch_size"] << " (" << j["patches"] << " patches + class token)\n";
    const auto& h = j["head"];
    os << "head         " << h["kind"].get<std::string>();
    if (h.contains("labels")) os << ", " << h["labels"] << " labels";
    if (h.contains("dim")) os << " to " << h["dim"] << " dimensions";
    if (j.contains("final_norm") && !j["final_norm"].get<bool>()) os << " (no final LayerNorm)";
    os << "\n";
  } else {
    os << ", vocab " << j["vocab_size"];
    if (j["max_positions"].get<int64_t>() > 0) os << ", " << j["max_positions"] << " positions";
    os << (j["tied_head"].get<bool>() ? ", tied head" : ", untied head");
    if (j.contains("sliding_window"))
      os << ", sliding window " << j["sliding_window"]["window"] << " (" << j["sliding_window"]["blocks"] << " of "
         << j["layers"] << " blocks)";
    os << "\n";
  }
  const auto& p = j["parameters"];
  os << "parameters   " << human(p["total"]) << " total (" << p["total"] << ")\n";
  for (const char* part : {"embeddings", "blocks", "head"})
    os << "  " << std::left << std::setw(11) << part << human(p[part]) << " (" << p[part] << ")\n";
  os << "dtypes      ";
  for (auto it = j["dtypes"].begin(); it != j["dtypes"].end(); ++it)
    os << " " << it.key() << ": " << human(it.value().get<int64_t>());
  os << "\n";
  os << "files        " << j["format"].get<std::string>() << ":";
  for (const auto& f : j["files"]) os << " " << f.get<std::string>();
  os << "\n";
  if (j.contains("blocks")) {
    os << "blocks      ";
    for (const auto& b : j["blocks"]) {
      os << "\n  " << std::left << std::setw(11) << ("from " + std::to_string(b["origin"].get<int64_t>()))
         << human(b["parameters"].get<int64_t>());
      if (b["kind"] == "harmonizer") {
        os << ", harmonizer of rank " << b["rank"];
        continue;
      }
      os << ", ffn " << b["ffn"];
      if (b.contains("attention_ranks")) {
        os << ", attention ranks";
        for (auto it = b["attention_ranks"].begin(); it != b["attention_ranks"].end(); ++it)
          os << " " << it.key() << " " << it.value();
      }
    }
    os << "\n";
  }
  if (j.contains("offsite")) os << "offsite      " << j["offsite"].dump() << "\n";
  return os.str();
}

}  // namespace ot
