// model/config.cpp: config.json -> ModelConfig, with one clear error per bad key.
#include "model/config.h"
#include "model/offsite_section.h"

#include <cmath>
#include <cstdio>

#include "util/error.h"

namespace ot {

std::string arch_name(Arch a) {
  switch (a) {
    case Arch::kOPT: return "opt";
    case Arch::kGPT2: return "gpt2";
    case Arch::kBloom: return "bloom";
    case Arch::kLlama: return "llama";
    case Arch::kMistral: return "mistral";
    case Arch::kQwen2: return "qwen2";
    case Arch::kGemma: return "gemma";
    case Arch::kPhi3: return "phi3";
    case Arch::kViT: return "vit";
    case Arch::kCLIPVision: return "clip_vision_model";
  }
  return "unknown";
}

bool is_vision(Arch a) { return a == Arch::kViT || a == Arch::kCLIPVision; }

std::string model_type_name(const ModelConfig& c) { return c.eva ? "eva_vit" : arch_name(c.arch); }
bool is_rope_decoder(Arch a) {
  return a == Arch::kLlama || a == Arch::kMistral || a == Arch::kQwen2 || a == Arch::kGemma || a == Arch::kPhi3;
}

namespace {

constexpr int64_t kMaxSize = 2147483647;  // largest accepted size or count in config.json

struct Reader {
  const nlohmann::json& j;
  const std::string& source;
  std::string family;

  const nlohmann::json* find(std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      auto it = j.find(k);
      if (it != j.end() && !it->is_null()) return &*it;
    }
    return nullptr;
  }

  std::string names(std::initializer_list<const char*> keys) const {
    std::string s;
    for (const char* k : keys) s += std::string(s.empty() ? "'" : " or '") + k + "'";
    return s;
  }

  int64_t positive(std::initializer_list<const char*> keys) const {
    const nlohmann::json* v = find(keys);
    OT_REQUIRE(v != nullptr, source, ": missing key ", names(keys), " (needed by ", family,
               " models)");
    // Sizes beyond int32 describe no loadable model, and bounding them keeps the arithmetic
    // on them (4 * hidden_size, vocab_size * hidden_size, ...) inside int64.
    OT_REQUIRE(v->is_number_integer() && v->get<int64_t>() > 0 && v->get<int64_t>() <= kMaxSize, source,
               ": key ", names(keys), ": expected a positive integer up to ", kMaxSize, ", got ", v->dump());
    return v->get<int64_t>();
  }

  int64_t positive_or(std::initializer_list<const char*> keys, int64_t fallback) const {
    return find(keys) ? positive(keys) : fallback;
  }

  double number_or(const char* key, double fallback) const {
    const nlohmann::json* v = find({key});
    if (!v) return fallback;
    OT_REQUIRE(v->is_number(), source, ": key '", key, "': expected a number, got ", v->dump());
    return v->get<double>();
  }

  bool bool_or(const char* key, bool fallback) const {
    const nlohmann::json* v = find({key});
    if (!v) return fallback;
    OT_REQUIRE(v->is_boolean(), source, ": key '", key, "': expected true or false, got ",
               v->dump());
    return v->get<bool>();
  }

  std::string string_or(const char* key, const std::string& fallback) const {
    const nlohmann::json* v = find({key});
    if (!v) return fallback;
    OT_REQUIRE(v->is_string(), source, ": key '", key, "': expected a string, got ", v->dump());
    return v->get<std::string>();
  }

  // Whether config.json's "architectures" names `cls`.
  bool names_class(const char* cls) const {
    const nlohmann::json* v = find({"architectures"});
    if (!v) return false;
    OT_REQUIRE(v->is_array(), source, ": key 'architectures': expected a list of class names, got ", v->dump());
    for (const auto& a : *v)
      if (a.is_string() && a.get<std::string>() == cls) return true;
    return false;
  }

  // image_size as an integer, or [height, width] with height == width.
  int64_t square_size(const char* key, int64_t fallback) const {
    const nlohmann::json* v = find({key});
    if (!v) return fallback;
    if (v->is_array() && v->size() == 2 && (*v)[0] == (*v)[1]) v = &(*v)[0];
    OT_REQUIRE(v->is_number_integer() && v->get<int64_t>() > 0 && v->get<int64_t>() <= 65536, source, ": key '",
               key, "': expected a positive integer (square images) up to 65536, got ", v->dump());
    return v->get<int64_t>();
  }

  std::optional<int64_t> token_id(const char* key) const {
    const nlohmann::json* v = find({key});
    if (!v) return std::nullopt;
    if (v->is_array() && !v->empty()) v = &(*v)[0];  // some configs list several eos ids
    OT_REQUIRE(v->is_number_integer() && v->get<int64_t>() >= 0, source, ": key '", key,
               "': expected a non-negative integer token id, got ", v->dump());
    return v->get<int64_t>();
  }
};

constexpr const char* kSupportedTypes =
    "opt, gpt2, bloom, llama, mistral, qwen2, gemma, phi3, vit, eva_vit, clip_vision_model, clip";

// A classifier's class count: id2label's size (what transformers derives num_labels from),
// else num_labels, else transformers' default of 2.
int64_t read_num_labels(const Reader& r) {
  const nlohmann::json* labels = r.find({"id2label"});
  if (!labels) return r.positive_or({"num_labels"}, 2);
  OT_REQUIRE(labels->is_object() && !labels->empty(), r.source,
             ": key 'id2label': expected an object mapping class indices to names");
  return static_cast<int64_t>(labels->size());
}

// A number of the `rope_scaling` object, required.
double rope_number(const nlohmann::json& rs, const char* key, const std::string& source, const std::string& kind) {
  auto it = rs.find(key);
  OT_REQUIRE(it != rs.end() && it->is_number(), source, ": key 'rope_scaling.", key, "': expected a number (needed by '",
             kind, "' RoPE scaling), got ", it == rs.end() ? std::string("nothing") : it->dump());
  return it->get<double>();
}

// `rope_scaling` as transformers 4.55 reads it: null or absent = default; `rope_type`, or the
// older `type`, picks linear, dynamic or llama3 (others are refused by name). `allowed`: false
// for families whose scaling kinds this project does not compute (Phi-3's longrope / su).
RopeScaling read_rope_scaling(const nlohmann::json& j, const std::string& source, const std::string& family,
                              bool allowed) {
  RopeScaling s;
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return s;
  OT_REQUIRE(it->is_object(), source, ": key 'rope_scaling': expected an object or null, got ", it->dump());
  const nlohmann::json& rs = *it;
  const char* type_key = rs.contains("rope_type") ? "rope_type" : "type";
  auto t = rs.find(type_key);
  OT_REQUIRE(t != rs.end() && t->is_string(), source,
             ": key 'rope_scaling': expected a string 'rope_type' (or 'type'), got ", rs.dump());
  const std::string kind = t->get<std::string>();
  OT_REQUIRE(allowed, source, ": key 'rope_scaling': ", family, " RoPE scaling '", kind,
             "' is not supported (expected null)");
  if (kind == "default") return s;
  if (kind == "linear" || kind == "dynamic" || kind == "llama3") {
    s.factor = rope_number(rs, "factor", source, kind);
    OT_REQUIRE(s.factor >= 1.0, source, ": key 'rope_scaling.factor': expected a number >= 1, got ", s.factor);
  }
  if (kind == "linear") {
    s.kind = RopeScaling::Kind::kLinear;
  } else if (kind == "dynamic") {
    s.kind = RopeScaling::Kind::kDynamic;
  } else if (kind == "llama3") {
    s.kind = RopeScaling::Kind::kLlama3;
    s.low_freq_factor = rope_number(rs, "low_freq_factor", source, kind);
    s.high_freq_factor = rope_number(rs, "high_freq_factor", source, kind);
    OT_REQUIRE(s.high_freq_factor > s.low_freq_factor, source,
               ": key 'rope_scaling.high_freq_factor': expected more than low_freq_factor (", s.low_freq_factor,
               "), got ", s.high_freq_factor);
    auto o = rs.find("original_max_position_embeddings");
    OT_REQUIRE(o != rs.end() && o->is_number_integer() && o->get<int64_t>() > 0, source,
               ": key 'rope_scaling.original_max_position_embeddings': expected a positive integer (needed by "
               "'llama3' RoPE scaling)");
    s.original_max_positions = o->get<int64_t>();
  } else {
    fail(source, ": key 'rope_scaling.", type_key, "': '", kind,
         "' is not supported (expected default, linear, dynamic or llama3)");
  }
  return s;
}

// transformers_version "MAJOR.MINOR..." below 4.36: the summed padding mask (config.h).
bool written_before_4_36(const nlohmann::json& j) {
  auto it = j.find("transformers_version");
  if (it == j.end() || !it->is_string()) return false;
  int major = 0, minor = 0;
  if (std::sscanf(it->get<std::string>().c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major < 4 || (major == 4 && minor < 36);
}

// The window of a sliding-window key: a positive integer, or null / absent (no window).
int64_t window_or_none(const Reader& r, const char* key, int64_t fallback) {
  const nlohmann::json* v = r.find({key});
  if (v == nullptr) return r.j.contains(key) ? 0 : fallback;  // null: no window
  return r.positive({key});
}

// Qwen2's sliding-window layers as transformers 4.55's Qwen2Config derives them: the window
// applies only with use_sliding_window; `layer_types` (one entry per original layer) wins
// when present, else layers at index >= max_window_layers slide.
void read_qwen2_window(ModelConfig& c, const Reader& r, int64_t original_layers) {
  const bool use = r.bool_or("use_sliding_window", false);
  const int64_t window = use ? window_or_none(r, "sliding_window", 4096) : 0;
  const int64_t max_window_layers = r.find({"max_window_layers"}) ? r.positive({"max_window_layers"}) : 28;
  std::vector<bool> sliding(static_cast<size_t>(original_layers), false);
  if (const nlohmann::json* lt = r.find({"layer_types"})) {
    OT_REQUIRE(lt->is_array() && static_cast<int64_t>(lt->size()) == original_layers, r.source,
               ": key 'layer_types': expected a list of ", original_layers,
               " entries (one per layer of the original model), got ", lt->dump());
    for (size_t i = 0; i < lt->size(); ++i) {
      const auto& e = (*lt)[i];
      OT_REQUIRE(e.is_string() && (e == "full_attention" || e == "sliding_attention"), r.source,
                 ": key 'layer_types': entry ", i, ": expected \"full_attention\" or \"sliding_attention\", got ",
                 e.dump());
      sliding[i] = e == "sliding_attention";
    }
  } else if (window > 0) {
    for (int64_t i = max_window_layers; i < original_layers; ++i) sliding[static_cast<size_t>(i)] = true;
  }
  bool any = false;
  for (bool b : sliding) any = any || b;
  if (!any) return;
  OT_REQUIRE(window > 0, r.source, ": key 'layer_types': sliding_attention layers need 'use_sliding_window' true "
             "and a positive 'sliding_window'");
  c.sliding_window = window;
  c.sliding_layers = sliding;
}

// The activation of Gemma's MLP. transformers 4.55 reads `hidden_act` (default
// gelu_pytorch_tanh); versions 4.39 to 4.47 read `hidden_activation` and ignored hidden_act.
// Where the two keys disagree the versions compute different models, so it is refused.
std::string gemma_activation(const Reader& r) {
  const std::string act = r.string_or("hidden_act", "gelu_pytorch_tanh");
  const nlohmann::json* ha = r.find({"hidden_activation"});
  if (ha != nullptr) {
    OT_REQUIRE(ha->is_string(), r.source, ": key 'hidden_activation': expected a string or null, got ", ha->dump());
    OT_REQUIRE(ha->get<std::string>() == act, r.source, ": key 'hidden_activation': \"", ha->get<std::string>(),
               "\" differs from 'hidden_act' \"", act, "\" (transformers versions disagree on which applies; "
               "expected the two to be equal, or hidden_activation null)");
  }
  return act;
}

// LLaMA and its relatives: the fields of the shared RoPE decoder block (families/llama.cpp).
void parse_rope_decoder(ModelConfig& c, const nlohmann::json& j, const Reader& r, const std::string& type) {
  const std::string& source = r.source;
  c.arch = type == "llama"     ? Arch::kLlama
           : type == "mistral" ? Arch::kMistral
           : type == "qwen2"   ? Arch::kQwen2
           : type == "gemma"   ? Arch::kGemma
                               : Arch::kPhi3;
  c.hidden_size = r.positive({"hidden_size"});
  c.num_layers = r.positive({"num_hidden_layers"});
  c.num_heads = r.positive({"num_attention_heads"});
  c.num_kv_heads = r.positive_or({"num_key_value_heads"}, c.num_heads);
  c.intermediate_size = r.positive({"intermediate_size"});
  c.max_positions = r.positive_or({"max_position_embeddings"}, 2048);
  c.norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  c.attention_dropout = r.number_or("attention_dropout", 0.0);
  // head_dim: given (null or absent = hidden / heads; Gemma's default is 256).
  c.head_dim = r.positive_or({"head_dim"}, c.arch == Arch::kGemma && !j.contains("head_dim") ? 256 : 0);
  c.rope_scaling = read_rope_scaling(j, source, type, c.arch != Arch::kPhi3);
  c.activation = c.arch == Arch::kGemma ? gemma_activation(r) : r.string_or("hidden_act", "silu");
  OT_REQUIRE(c.activation == "silu" || c.activation == "gelu" || c.activation == "gelu_new" ||
                 c.activation == "gelu_pytorch_tanh" || c.activation == "relu",
             source, ": key 'hidden_act': '", c.activation,
             "' is not supported (expected silu, gelu, gelu_new, gelu_pytorch_tanh or relu)");
  const int64_t original_layers = bundle_num_original_layers(j, c.num_layers, source);
  bool tie_default = false;
  switch (c.arch) {
    case Arch::kLlama:
      c.attention_bias = r.bool_or("attention_bias", false);
      c.qkv_bias = c.attention_bias;
      c.mlp_bias = r.bool_or("mlp_bias", false);
      c.summed_padding_mask = written_before_4_36(j);
      break;
    case Arch::kMistral:
      c.attention_bias = c.qkv_bias = false;
      c.sliding_window = window_or_none(r, "sliding_window", 4096);
      break;
    case Arch::kQwen2:
      c.attention_bias = false;
      c.qkv_bias = true;
      read_qwen2_window(c, r, original_layers);
      break;
    case Arch::kGemma:
      c.attention_bias = c.qkv_bias = r.bool_or("attention_bias", false);
      c.norm_plus_one = true;
      c.embedding_scale = std::sqrt(double(c.hidden_size));
      tie_default = true;
      break;
    case Arch::kPhi3: {
      c.attention_bias = c.qkv_bias = false;
      c.fused_projections = true;
      c.sliding_window = window_or_none(r, "sliding_window", 0);
      c.residual_dropout = r.number_or("resid_pdrop", 0.0);
      c.embedding_dropout = r.number_or("embd_pdrop", 0.0);
      const double partial = r.number_or("partial_rotary_factor", 1.0);
      OT_REQUIRE(partial == 1.0, source, ": key 'partial_rotary_factor': ", partial,
                 " is not supported (expected 1.0: RoPE over the whole head)");
      break;
    }
    default:
      break;
  }
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", tie_default);
}

// ViT (ViTModel, ViTForImageClassification), EVA's encoder in ViT layout (eva_vit: ViT
// blocks, no pooler, `final_layernorm` false by default as in BLIP-2's EVA-ViT-g) and CLIP's
// vision tower (CLIPVisionModel[WithProjection], CLIPForImageClassification, or the vision
// half of a CLIPModel's config), with transformers' defaults for the keys save_pretrained
// leaves out.
void parse_vision(ModelConfig& c, const nlohmann::json& j, const std::string& source, const std::string& type) {
  const nlohmann::json* tower = &j;
  std::string where = source;
  if (type == "clip") {
    auto vc = j.find("vision_config");
    OT_REQUIRE(vc != j.end() && vc->is_object(), source,
               ": key 'vision_config': expected an object (a CLIP checkpoint's vision tower)");
    tower = &*vc;
    where = source + " (vision_config)";
    c.clip_two_towers = true;
  }
  Reader r{*tower, where, type};
  Reader top{j, source, type};
  c.eva = type == "eva_vit";
  const bool vit = type == "vit" || c.eva;
  c.arch = vit ? Arch::kViT : Arch::kCLIPVision;
  c.hidden_size = r.positive_or({"hidden_size"}, 768);
  c.num_layers = r.positive_or({"num_hidden_layers"}, 12);
  c.num_heads = r.positive_or({"num_attention_heads"}, 12);
  c.intermediate_size = r.positive_or({"intermediate_size"}, 3072);
  c.image_size = r.square_size("image_size", 224);
  c.patch_size = r.positive_or({"patch_size"}, vit ? 16 : 32);
  c.num_channels = r.positive_or({"num_channels"}, 3);
  c.activation = r.string_or("hidden_act", vit ? "gelu" : "quick_gelu");
  OT_REQUIRE(c.activation == "gelu" || c.activation == "quick_gelu" || c.activation == "gelu_new" ||
                 c.activation == "relu",
             where, ": key 'hidden_act': '", c.activation,
             "' is not supported for a vision encoder (expected gelu, quick_gelu, gelu_new or relu)");
  c.norm_eps = r.number_or("layer_norm_eps", c.eva ? 1e-6 : vit ? 1e-12 : 1e-5);
  if (vit) {
    c.qkv_bias = r.bool_or("qkv_bias", true);
    if (c.eva) c.vit_final_norm = r.bool_or("final_layernorm", false);
    if (c.eva) c.final_norm_eps = r.number_or("final_layernorm_eps", c.norm_eps);
    c.residual_dropout = r.number_or("hidden_dropout_prob", 0.0);
    c.attention_dropout = r.number_or("attention_probs_dropout_prob", 0.0);
    if (r.names_class("ViTForImageClassification")) {
      c.num_labels = read_num_labels(r);
    } else if (c.eva) {
      c.vit_pooler = false;  // EVA has none
    } else {
      for (const char* other : {"ViTForMaskedImageModeling", "ViTMAEModel", "ViTMAEForPreTraining"})
        OT_REQUIRE(!r.names_class(other), where, ": key 'architectures': ", other,
                   " is not supported (expected ViTModel or ViTForImageClassification)");
      c.vit_pooler = true;  // ViTModel's default add_pooling_layer
    }
  } else {
    c.attention_dropout = r.number_or("attention_dropout", 0.0);
    // transformers' CLIPForImageClassification: the labels are the top-level config's.
    if (top.names_class("CLIPForImageClassification"))
      c.num_labels = read_num_labels(top);
    else if (c.clip_two_towers)
      c.projection_dim = top.positive_or({"projection_dim"}, 512);
    else if (r.names_class("CLIPVisionModelWithProjection"))
      c.projection_dim = r.positive_or({"projection_dim"}, 512);
  }
  OT_REQUIRE(c.image_size % c.patch_size == 0, where, ": image_size ", c.image_size,
             " is not a multiple of patch_size ", c.patch_size);
  OT_REQUIRE(c.hidden_size % c.num_heads == 0, where, ": hidden size ", c.hidden_size,
             " is not divisible by the number of attention heads ", c.num_heads);
  for (double p : {c.residual_dropout, c.attention_dropout})
    OT_REQUIRE(p >= 0.0 && p < 1.0, where, ": dropout probabilities must lie in [0, 1), got ", p);
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.max_positions = c.num_patches() + 1;
  c.tie_word_embeddings = false;
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source) {
  OT_REQUIRE(j.is_object(), source, ": expected a JSON object");
  auto mt = j.find("model_type");
  OT_REQUIRE(mt != j.end(), source,
             ": missing key 'model_type' (expected one of ", kSupportedTypes, ")");
  OT_REQUIRE(mt->is_string(), source, ": key 'model_type': expected a string, got ", mt->dump());
  const std::string type = mt->get<std::string>();

  ModelConfig c;
  c.raw = j;
  Reader r{j, source, type};
  if (type == "opt") {
    c.arch = Arch::kOPT;
    c.hidden_size = r.positive({"hidden_size"});
    c.num_layers = r.positive({"num_hidden_layers"});
    c.num_heads = r.positive({"num_attention_heads"});
    c.intermediate_size = r.positive({"ffn_dim"});
    c.max_positions = r.positive({"max_position_embeddings"});
    c.word_embed_proj_dim = r.positive_or({"word_embed_proj_dim"}, c.hidden_size);
    c.do_layer_norm_before = r.bool_or("do_layer_norm_before", true);
    c.enable_bias = r.bool_or("enable_bias", true);
    c.layer_norm_elementwise_affine = r.bool_or("layer_norm_elementwise_affine", true);
    c.remove_final_layer_norm = r.bool_or("_remove_final_layer_norm", false);
    c.activation = r.string_or("activation_function", "relu");
    c.norm_eps = 1e-5;
    // `dropout` is on the two residual branches only: HF's OPTDecoder adds the position
    // embeddings to the token embeddings without dropout.
    c.residual_dropout = r.number_or("dropout", 0.1);
    c.embedding_dropout = 0.0;
    c.attention_dropout = r.number_or("attention_dropout", 0.0);
    c.activation_dropout = r.number_or("activation_dropout", 0.0);
  } else if (type == "gpt2") {
    c.arch = Arch::kGPT2;
    c.hidden_size = r.positive({"n_embd", "hidden_size"});
    c.num_layers = r.positive({"n_layer", "num_hidden_layers"});
    c.num_heads = r.positive({"n_head", "num_attention_heads"});
    c.intermediate_size = r.positive_or({"n_inner"}, 4 * c.hidden_size);
    c.max_positions = r.positive({"n_positions", "max_position_embeddings"});
    c.norm_eps = r.number_or("layer_norm_epsilon", 1e-5);
    c.activation = r.string_or("activation_function", "gelu_new");
    c.scale_attn_weights = r.bool_or("scale_attn_weights", true);
    c.scale_attn_by_inverse_layer_idx = r.bool_or("scale_attn_by_inverse_layer_idx", false);
    c.embedding_dropout = r.number_or("embd_pdrop", 0.1);
    c.residual_dropout = r.number_or("resid_pdrop", 0.1);
    c.attention_dropout = r.number_or("attn_pdrop", 0.1);
    OT_REQUIRE(!r.bool_or("reorder_and_upcast_attn", false), source,
               ": key 'reorder_and_upcast_attn': true is not supported (expected false)");
  } else if (type == "bloom") {
    c.arch = Arch::kBloom;
    c.hidden_size = r.positive({"hidden_size", "n_embed"});
    c.num_layers = r.positive({"n_layer", "num_hidden_layers"});
    c.num_heads = r.positive({"n_head", "num_attention_heads"});
    c.intermediate_size = 4 * c.hidden_size;
    c.max_positions = 0;  // ALiBi: no learned positions
    c.norm_eps = r.number_or("layer_norm_epsilon", 1e-5);
    c.activation = "bloom_gelu";
    c.apply_residual_connection_post_layernorm =
        r.bool_or("apply_residual_connection_post_layernorm", false);
    c.residual_dropout = r.number_or("hidden_dropout", 0.0);
    c.attention_dropout = r.number_or("attention_dropout", 0.0);
  } else if (type == "llama" || type == "mistral" || type == "qwen2" || type == "gemma" || type == "phi3") {
    parse_rope_decoder(c, j, r, type);
  } else if (type == "vit" || type == "eva_vit" || type == "clip_vision_model" || type == "clip") {
    parse_vision(c, j, source, type);
    return c;
  } else {
    fail(source, ": model_type '", type, "' is not supported (expected one of ", kSupportedTypes, ")");
  }
  c.vocab_size = r.positive({"vocab_size"});
  if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  // (a RoPE decoder's explicit head_dim need not divide hidden_size: Gemma)
  if (c.head_dim == 0)
    OT_REQUIRE(c.hidden_size % c.num_heads == 0, source, ": hidden size ", c.hidden_size,
               " is not divisible by the number of attention heads ", c.num_heads);
  OT_REQUIRE(c.num_heads % c.num_kv_heads == 0, source, ": num_attention_heads ", c.num_heads,
             " is not a multiple of num_key_value_heads ", c.num_kv_heads);
  if (c.head_dim == 0) c.head_dim = c.hidden_size / c.num_heads;
  if (is_rope_decoder(c.arch))
    OT_REQUIRE(c.head_dim % 2 == 0, source, ": RoPE needs an even head dimension, got ", c.head_dim);
  if (c.arch == Arch::kOPT || c.arch == Arch::kGPT2)
    OT_REQUIRE(c.activation == "relu" || c.activation == "gelu" || c.activation == "gelu_new" ||
                   c.activation == "gelu_pytorch_tanh" || c.activation == "silu",
               source, ": key 'activation_function': '", c.activation,
               "' is not supported (expected relu, gelu, gelu_new, gelu_pytorch_tanh or silu)");
  for (double p : {c.embedding_dropout, c.residual_dropout, c.attention_dropout, c.activation_dropout})
    OT_REQUIRE(p >= 0.0 && p < 1.0, source, ": dropout probabilities must lie in [0, 1), got ", p);
  if (!is_rope_decoder(c.arch)) c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  if (c.arch == Arch::kGPT2) c.summed_padding_mask = true;
  c.pad_token_id = r.token_id("pad_token_id");
  c.bos_token_id = r.token_id("bos_token_id");
  c.eos_token_id = r.token_id("eos_token_id");
  return c;
}

nlohmann::json model_config_to_json(const ModelConfig& c) {
  nlohmann::json j = c.raw.is_object() ? c.raw : nlohmann::json::object();
  if (is_vision(c.arch)) {
    if (c.clip_two_towers) {
      // What is written is the vision tower alone: a CLIPVisionModelWithProjection config.
      nlohmann::json vision = j.value("vision_config", nlohmann::json::object());
      for (const char* k : {"offsite", "torch_dtype", "transformers_version", "id2label", "label2id"})
        if (j.contains(k)) vision[k] = j[k];
      if (c.projection_dim > 0) vision["projection_dim"] = c.projection_dim;
      vision["architectures"] = {c.num_labels > 0 ? "CLIPForImageClassification" : "CLIPVisionModelWithProjection"};
      j = vision;
    }
    j["model_type"] = model_type_name(c);
    j["num_hidden_layers"] = c.num_layers;
    if (c.eva) j["final_layernorm"] = c.vit_final_norm;
    return j;
  }
  j["model_type"] = arch_name(c.arch);
  j["vocab_size"] = c.vocab_size;
  switch (c.arch) {
    case Arch::kOPT:
      j["num_hidden_layers"] = c.num_layers;
      break;
    case Arch::kGPT2:
      j[j.contains("num_hidden_layers") && !j.contains("n_layer") ? "num_hidden_layers" : "n_layer"] =
          c.num_layers;
      break;
    case Arch::kBloom:
      j[j.contains("num_hidden_layers") && !j.contains("n_layer") ? "num_hidden_layers" : "n_layer"] =
          c.num_layers;
      break;
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kGemma:
    case Arch::kPhi3:
      j["num_hidden_layers"] = c.num_layers;
      break;
    case Arch::kViT:
    case Arch::kCLIPVision:
      break;  // returned above
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  return j;
}

bool is_offsite_bundle(const ModelConfig& config) { return is_offsite_bundle(config.raw); }

}  // namespace ot
