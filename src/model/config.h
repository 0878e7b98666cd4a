// model/config.h: the architecture description of a model, parsed from a Hugging Face
// config.json. One struct covers the supported families: the decoder LMs (OPT, GPT-2, BLOOM,
// and the RoPE decoders LLaMA, Mistral, Qwen2, Gemma, Phi-3) and the vision encoders (ViT,
// EVA's ViT, CLIP's vision tower); family-specific fields are
// grouped and documented. The raw JSON is kept so a
// written checkpoint carries every key the user's config had.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ot {

enum class Arch { kOPT, kGPT2, kBloom, kLlama, kMistral, kQwen2, kGemma, kPhi3, kViT, kCLIPVision };

// the HF model_type: opt, gpt2, bloom, llama, mistral, qwen2, gemma, phi3, vit, clip_vision_model
std::string arch_name(Arch a);
bool is_vision(Arch a);         // an image encoder (ViT, CLIP vision), not a decoder LM
// A decoder of the LLaMA kind (model/families/llama.cpp): RMSNorm, RoPE, gated MLP, no learned
// positions. LLaMA, Mistral, Qwen2, Gemma and Phi-3.
bool is_rope_decoder(Arch a);

// RoPE frequency scaling (config.json `rope_scaling`, with `rope_type` or the older `type`),
// as transformers' modeling_rope_utils defines it. kDefault: inv_freq = 1 / theta^(2i/D).
struct RopeScaling {
  enum class Kind { kDefault, kLinear, kDynamic, kLlama3 };
  Kind kind = Kind::kDefault;
  double factor = 1.0;                  // linear, dynamic, llama3
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  int64_t original_max_positions = 0;   // llama3: original_max_position_embeddings
};

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
  // RoPE decoders (LLaMA, Mistral, Qwen2, Gemma, Phi-3). head_dim above comes from config.json's
  // `head_dim` where given (Gemma: may differ from hidden_size / num_heads).
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;     // bias on o_proj (LLaMA, Gemma: attention_bias; Qwen2: none)
  // (qkv_bias below: bias on q/k/v; LLaMA, Gemma: attention_bias; Qwen2: always; Mistral, Phi-3: none)
  bool mlp_bias = false;
  bool fused_projections = false;  // Phi-3: qkv_proj = [q; k; v] and gate_up_proj = [gate; up] rows
  bool norm_plus_one = false;      // Gemma: RMSNorm computes x_hat * (1 + w) in fp32, w starts at 0
  double embedding_scale = 0.0;    // Gemma: embeddings times sqrt(hidden_size) (0: not scaled)
  // Sliding-window attention (Mistral, Qwen2, Phi-3): key k visible to query q iff
  // q - sliding_window < k <= q. 0: no window. sliding_layers[i] says whether the block of
  // ORIGINAL index i uses it (empty: every block does); offsite bundles keep original indices.
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  // How padded batches are masked, which only changes query rows at padded positions (a
  // left-padded batch's loss reads one): transformers up to 4.35 summed the causal and padding
  // biases for GPT-2 and LLaMA (a key both future and padded gets -inf); later versions mask
  // with one lowest value, so a query with no visible key attends uniformly to all keys.
  bool summed_padding_mask = false;
  // Vision encoders (ViT, CLIP's vision tower): square images of image_size pixels cut into
  // (image_size / patch_size)^2 patches, plus a class token in front.
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
  bool qkv_bias = true;         // ViT, and the RoPE decoders' q/k/v projections
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
  // Whether the block of original index `layer` attends within the sliding window.
  bool layer_slides(int64_t layer) const {
    if (sliding_window <= 0) return false;
    if (sliding_layers.empty()) return true;
    return layer >= 0 && layer < static_cast<int64_t>(sliding_layers.size()) && sliding_layers[static_cast<size_t>(layer)];
  }
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
