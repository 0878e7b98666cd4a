// model/load.h: building models from Hugging Face directories and writing them back.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>
#include <string>

#include "model/decoder_lm.h"
#include "model/vision_encoder.h"

namespace ot {

struct LoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;  // weights are converted to this on load
};

// config.json + weights of `dir` -> an eval-mode model on `opts.device` in `opts.dtype`.
// A vision encoder's directory is an error that says so (load it with load_vision_model).
DecoderLM load_model(const std::string& dir, const LoadOptions& opts = {});
// The same for a ViT / CLIP vision checkpoint (a language model's directory is an error).
VisionEncoder load_vision_model(const std::string& dir, const LoadOptions& opts = {});
// Whether `dir`'s config.json describes a vision encoder (ViT, CLIP).
bool is_vision_model_dir(const std::string& dir);

// What a checkpoint's config.json says about its structure beyond the architecture: an
// offsite bundle's block map (blocks built with their original index), harmonizers (layer
// replacement), MLP widths (channel pruning) and low-rank projections, and bottleneck
// adapters saved with the model. Applied to a freshly built model before its weights are
// loaded; `dir` names config.json in messages.
void shape_from_config(BlockModelImpl& model, const nlohmann::json& cfg_json, const std::string& dir);

// Undoes, without changing what the model computes, the structure only this project reads:
// low-rank projections multiplied out, pruned MLP channels restored as zeros, and the
// offsite section's svd_ranks / mlp_channels removed; the result saves as a checkpoint
// transformers loads (`ot convert plain-hf`). A bundle holding harmonizers is refused: no
// transformers layer computes one.
void make_plain(BlockModelImpl& model);

// A model with uninitialised weights (call init_weights or load_hf_state_dict).
DecoderLM build_model(const ModelConfig& config, const LoadOptions& opts = {});

// Writes config.json (the model's config, plus `extra_config` keys merged in) and
// model.safetensors in the parameters' dtype. Atomic: `dir` is complete or untouched.
void save_model(DecoderLM& model, const std::string& dir,
                const nlohmann::json& extra_config = nlohmann::json::object());
void save_model(VisionEncoder& model, const std::string& dir,
                const nlohmann::json& extra_config = nlohmann::json::object());

}  // namespace ot
