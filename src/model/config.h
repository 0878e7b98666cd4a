// model/config.h: the architecture description of a model, parsed from a Hugging Face
// config.json. One struct covers the supported families: the decoder LMs (OPT, GPT-2, BLOOM,
// LLaMA) and the vision encoders (ViT, EVA's ViT, CLIP's vision tower); family-specific fields are
// grouped and documented. The raw JSON is kept so a
// written checkpoint carries every key the user's config had.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ot {

enum class Arch { kOPT, kGPT2, kBloom, kLlama, kViT, kCLIPVision };

std::string arch_name(Arch a);  // the HF model_type: opt, gpt2, bloom, llama, vit, clip_vision_model
bool is_vision(Arch a);         // an image encoder (ViT, CLIP vision), not a decoder LM

struct ModelConfig;
// The model_type written to config.json: arch_name, except `eva_vit` for a ViT-layout EVA
// encoder (vit_final_norm may be false there, which transformers' `vit` cannot express).
std::string model_type_name(const ModelConfig& c);

struct ModelConfig {
  Arch arch = Arch::kOPT;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // C
  int64_t num_layers = 0;          // number of blocks
  int64_t num_heads = 0;           // query heads (H)
  int64_t num_kv_heads = 0;        // key/value heads (GQA; == num_heads when absent)
  int64_t head_dim = 0;            // C / H
  int64_t intermediate_size = 0;   // FFN width
  int64_t max_positions = 0;       // learned/rope position limit (0 = unlimited: ALiBi)
  double norm_eps = 1e-5;
  std::string activation;          // relu, gelu_new, bloom_gelu, silu, ...
  bool tie_word_embeddings = true;
  std::optional<int64_t> pad_token_id, bos_token_id, eos_token_id;

  // Dropout probabilities (training only), named by role across families:
  double embedding_dropout = 0.0;   // after the embeddings (GPT-2 embd_pdrop; OPT has none)
  double residual_dropout = 0.0;    // on each sub-layer output (OPT dropout, resid_pdrop, hidden_dropout)
  double attention_dropout = 0.0;   // on attention probabilities
  double activation_dropout = 0.0;  // after the FFN activation (OPT)

  // OPT
  bool do_layer_norm_before = true;      // pre-LN (all sizes but 350m)
  int64_t word_embed_proj_dim = 0;       // != hidden_size -> project_in / project_out
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool remove_final_layer_norm = false;  // `_remove_final_layer_norm`
  // GPT-2
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  // BLOOM
  bool apply_residual_connection_post_layernorm = false;
  // LLaMA
  double rope_theta = 10000.0;
  bool attention_bias = false;
  bool mlp_bias = false;
  // Vision encoders (ViT, CLIP's vision tower): square images of image_size pixels cut into
  // (image_size / patch_size)^2 patches, plus a class token in front.
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
  bool qkv_bias = true;         // ViT
  int64_t num_labels = 0;       // rows of ViTForImageClassification's classifier (0: none)
  bool vit_pooler = false;      // ViTModel's pooler (dense + tanh on the class token)
  bool eva = false;             // model_type eva_vit (checkpoint/eva_vit.h): ViT blocks, no pooler
  bool vit_final_norm = true;   // ViT's final `layernorm` (EVA: `final_layernorm`, often absent)
  double final_norm_eps = 0.0;  // its eps when it differs (EVA: `final_layernorm_eps`); 0: norm_eps
  int64_t projection_dim = 0;   // CLIP's visual_projection (0: none)
  bool clip_two_towers = false; // read from a full CLIP checkpoint (the text tower is ignored)

  nlohmann::json raw;  // the config.json this came from (updated on write)

  int64_t num_patches() const { return patch_size > 0 ? (image_size / patch_size) * (image_size / patch_size) : 0; }
  double vit_final_norm_eps() const { return final_norm_eps > 0 ? final_norm_eps : norm_eps; }
  bool opt_projects() const { return arch == Arch::kOPT && word_embed_proj_dim != hidden_size; }
  bool opt_final_norm() const {
    return arch == Arch::kOPT && do_layer_norm_before && !remove_final_layer_norm;
  }
};

// Parses config.json contents. `source` (usually the file path) prefixes every error:
// "DIR/config.json: key 'n_embd': expected a positive integer, got \"x\"".
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);

// Whether the model is an offsite bundle (model/offsite_section.h).
bool is_offsite_bundle(const ModelConfig& config);

// The JSON to write back: `raw` with the fields this struct owns refreshed.
nlohmann::json model_config_to_json(const ModelConfig& c);

}  // namespace ot
