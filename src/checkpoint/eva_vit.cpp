// checkpoint/eva_vit.cpp: see eva_vit.h.
#include "checkpoint/eva_vit.h"

#include <cmath>
#include <set>

#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/torch_bin.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

constexpr const char* kBlip2Prefix = "visual_encoder.";
constexpr const char* kBlip2FinalNorm = "ln_vision.";
constexpr int64_t kEvaGiantWidth = 1408, kEvaGiantHeads = 16;  // LAVIS create_eva_vit_g
constexpr double kEvaNormEps = 1e-6;                            // LAVIS: partial(nn.LayerNorm, eps=1e-6)
constexpr double kBlip2FinalNormEps = 1e-5;                     // BLIP-2's ln_vision: a default LayerNorm

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Parts of a key that mark a block or head this layout cannot express, and why.
struct Unsupported {
  const char* part;
  const char* what;
};
constexpr Unsupported kUnsupported[] = {
    {"gamma_1", "layer scale (gamma_1/gamma_2)"},
    {"gamma_2", "layer scale (gamma_1/gamma_2)"},
    {"relative_position", "relative position bias"},
    {"rel_pos_bias", "relative position bias"},
    {"fc_norm", "mean pooling with fc_norm"},
    {"ffn_ln", "EVA-02 blocks (SwiGLU with ffn_ln)"},
    {"mlp.w1", "EVA-02 blocks (SwiGLU)"},
    {"mlp.w12", "EVA-02 blocks (SwiGLU)"},
    {"rope", "EVA-02 blocks (rotary positions)"},
    {"attn.q_proj", "separate q/k/v projections (EVA-02 blocks)"},
    {"attn.inner_attn_ln", "EVA-02 blocks (sub-LN attention)"},
};

// The encoder's tensors by their LAVIS names, each taken at most once.
class Keys {
 public:
  Keys(StateDict tensors, std::string source) : t_(std::move(tensors)), source_(std::move(source)) {}

  bool has(const std::string& k) const { return t_.count(k) > 0; }

  at::Tensor take(const std::string& k, std::vector<int64_t> shape) {
    auto it = t_.find(k);
    OT_REQUIRE(it != t_.end(), source_, ": missing '", k, "' (expected an EVA ViT in LAVIS's eva_vit.py layout)");
    const at::Tensor v = it->second;
    OT_REQUIRE(v.is_floating_point(), source_, ": '", k, "' is ", v.scalar_type(), ", expected floating point");
    OT_REQUIRE(v.sizes() == at::IntArrayRef(shape), source_, ": '", k, "' has shape ", shape_str(v.sizes()),
               ", expected ", shape_str(shape));
    used_.insert(k);
    return v;
  }

  // Every tensor has been mapped; a key left over is one this layout does not know.
  void require_all_used() const {
    std::vector<std::string> extra;
    for (const auto& kv : t_)
      if (!used_.count(kv.first)) extra.push_back(kv.first);
    if (extra.empty()) return;
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", '" : "'") + extra[i] + "'";
    if (extra.size() > 5) list += " and " + std::to_string(extra.size() - 5) + " more";
    fail(source_, ": ", extra.size(), " tensor(s) are not part of an EVA ViT in LAVIS's layout: ", list);
  }

 private:
  StateDict t_;
  std::string source_;
  std::set<std::string> used_;
};

int64_t count_blocks(const StateDict& sd) {
  std::set<int64_t> seen;
  for (const auto& kv : sd) {
    if (kv.first.rfind("blocks.", 0) != 0) continue;
    const std::string rest = kv.first.substr(7);
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) continue;
    const std::string digits = rest.substr(0, dot);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6) continue;
    seen.insert(std::stoll(digits));
  }
  return static_cast<int64_t>(seen.size());
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    default: return "float32";
  }
}

}  // namespace

EvaVitImport import_eva_vit(const StateDict& sd, const std::string& source, int64_t num_heads) {
  EvaVitImport out;
  // A BLIP-2 checkpoint holds the encoder under visual_encoder. and its final norm as ln_vision.
  bool blip2 = false;
  for (const auto& kv : sd) blip2 = blip2 || kv.first.rfind(kBlip2Prefix, 0) == 0;
  StateDict encoder;
  for (const auto& kv : sd) {
    std::string key = kv.first;
    if (blip2) {
      if (key.rfind(kBlip2Prefix, 0) == 0) key = key.substr(std::string(kBlip2Prefix).size());
      else if (key.rfind(kBlip2FinalNorm, 0) == 0) key = "norm." + key.substr(std::string(kBlip2FinalNorm).size());
      else {
        out.left_out.push_back(key);
        continue;
      }
    }
    for (const Unsupported& u : kUnsupported)
      OT_REQUIRE(key.find(u.part) == std::string::npos, source, ": '", kv.first, "' belongs to ", u.what,
                 ", which a ViT-layout EVA cannot express (supported: LAVIS's eva_vit.py blocks without layer scale "
                 "or relative position bias, as BLIP-2's EVA-ViT-g)");
    encoder.emplace(key, kv.second);
  }
  OT_REQUIRE(encoder.count("cls_token"), source, ": no 'cls_token'", blip2 ? " under 'visual_encoder.'" : "",
             " (expected an EVA ViT in LAVIS's eva_vit.py layout, e.g. eva_vit_g.pth)");
  const int64_t depth = count_blocks(encoder);
  const at::Tensor cls_in = encoder.at("cls_token");
  OT_REQUIRE(cls_in.dim() == 3 && cls_in.size(0) == 1 && cls_in.size(1) == 1, source, ": 'cls_token' has shape ",
             shape_str(cls_in.sizes()), ", expected [1, 1, width]");
  const int64_t C = cls_in.size(2);
  const at::Tensor proj_in = encoder.count("patch_embed.proj.weight") ? encoder.at("patch_embed.proj.weight") : at::Tensor();
  OT_REQUIRE(proj_in.defined() && proj_in.dim() == 4 && proj_in.size(0) == C && proj_in.size(2) == proj_in.size(3),
             source, ": 'patch_embed.proj.weight' missing or not [", C, ", channels, patch, patch]");
  const int64_t channels = proj_in.size(1), patch = proj_in.size(2);
  const at::Tensor pos_in = encoder.count("pos_embed") ? encoder.at("pos_embed") : at::Tensor();
  OT_REQUIRE(pos_in.defined() && pos_in.dim() == 3 && pos_in.size(0) == 1 && pos_in.size(2) == C, source,
             ": 'pos_embed' missing or not [1, 1 + patches, ", C, "] (absolute positions)");
  const int64_t patches = pos_in.size(1) - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(double(std::max<int64_t>(patches, 0)))));
  OT_REQUIRE(patches > 0 && grid * grid == patches, source, ": 'pos_embed' holds ", patches,
             " patch positions, not a square grid");
  OT_REQUIRE(depth > 0, source, ": no 'blocks.<i>.*' tensors");
  if (num_heads == 0) {
    OT_REQUIRE(C == kEvaGiantWidth, source, ": width ", C, " is not EVA-ViT-g's ", kEvaGiantWidth,
               "; the number of attention heads is not in the weights: give it (--num-heads)");
    num_heads = kEvaGiantHeads;
  }
  OT_REQUIRE(num_heads > 0 && C % num_heads == 0, source, ": width ", C, " is not divisible by ", num_heads,
             " attention heads");
  const bool qkv_bias = encoder.count("blocks.0.attn.q_bias") > 0;
  const int64_t F = encoder.count("blocks.0.mlp.fc1.weight") ? encoder.at("blocks.0.mlp.fc1.weight").size(0) : 0;
  OT_REQUIRE(F > 0, source, ": missing 'blocks.0.mlp.fc1.weight'");

  const auto head_in = encoder.find("head.weight");
  const int64_t labels = head_in != encoder.end() && head_in->second.dim() == 2 ? head_in->second.size(0) : 0;
  OT_REQUIRE(head_in == encoder.end() || labels > 0, source, ": 'head.weight' is not a [classes, ", C, "] matrix");

  Keys keys(std::move(encoder), source);
  StateDict& w = out.weights;
  const bool head = keys.has("head.weight");
  const std::string base = head ? "vit." : "";  // ViTForImageClassification nests the encoder under vit.
  w[base + "embeddings.cls_token"] = keys.take("cls_token", {1, 1, C});
  w[base + "embeddings.position_embeddings"] = keys.take("pos_embed", {1, patches + 1, C});
  w[base + "embeddings.patch_embeddings.projection.weight"] = keys.take("patch_embed.proj.weight", {C, channels, patch, patch});
  w[base + "embeddings.patch_embeddings.projection.bias"] = keys.take("patch_embed.proj.bias", {C});
  for (int64_t i = 0; i < depth; ++i) {
    const std::string from = "blocks." + std::to_string(i) + ".";
    const std::string to = base + "encoder.layer." + std::to_string(i) + ".";
    w[to + "layernorm_before.weight"] = keys.take(from + "norm1.weight", {C});
    w[to + "layernorm_before.bias"] = keys.take(from + "norm1.bias", {C});
    const at::Tensor qkv = keys.take(from + "attn.qkv.weight", {3 * C, C});
    const char* names[3] = {"query", "key", "value"};
    for (int64_t p = 0; p < 3; ++p)
      w[to + "attention.attention." + names[p] + ".weight"] = qkv.narrow(0, p * C, C).contiguous();
    for (const char* b : {"attn.q_bias", "attn.v_bias"})
      OT_REQUIRE(keys.has(from + b) == qkv_bias, source, ": '", from, b, "' is ", qkv_bias ? "missing" : "present",
                 " (q_bias and v_bias are in every block or in none)");
    if (qkv_bias) {
      const at::Tensor q_bias = keys.take(from + "attn.q_bias", {C});
      w[to + "attention.attention.query.bias"] = q_bias;
      w[to + "attention.attention.key.bias"] = at::zeros_like(q_bias);  // EVA's key has no bias
      w[to + "attention.attention.value.bias"] = keys.take(from + "attn.v_bias", {C});
    }
    w[to + "attention.output.dense.weight"] = keys.take(from + "attn.proj.weight", {C, C});
    w[to + "attention.output.dense.bias"] = keys.take(from + "attn.proj.bias", {C});
    w[to + "layernorm_after.weight"] = keys.take(from + "norm2.weight", {C});
    w[to + "layernorm_after.bias"] = keys.take(from + "norm2.bias", {C});
    w[to + "intermediate.dense.weight"] = keys.take(from + "mlp.fc1.weight", {F, C});
    w[to + "intermediate.dense.bias"] = keys.take(from + "mlp.fc1.bias", {F});
    w[to + "output.dense.weight"] = keys.take(from + "mlp.fc2.weight", {C, F});
    w[to + "output.dense.bias"] = keys.take(from + "mlp.fc2.bias", {C});
  }
  const bool final_norm = keys.has("norm.weight");
  if (final_norm) {
    w[base + "layernorm.weight"] = keys.take("norm.weight", {C});
    w[base + "layernorm.bias"] = keys.take("norm.bias", {C});
  }
  if (head) {
    w["classifier.weight"] = keys.take("head.weight", {labels, C});
    w["classifier.bias"] = keys.take("head.bias", {labels});
  }
  keys.require_all_used();

  nlohmann::json& c = out.config;
  c["model_type"] = "eva_vit";
  c["architectures"] = {head ? "ViTForImageClassification" : "ViTModel"};
  c["hidden_size"] = C;
  c["num_hidden_layers"] = depth;
  c["num_attention_heads"] = num_heads;
  c["intermediate_size"] = F;
  c["image_size"] = grid * patch;
  c["patch_size"] = patch;
  c["num_channels"] = channels;
  c["hidden_act"] = "gelu";
  c["layer_norm_eps"] = kEvaNormEps;
  c["qkv_bias"] = qkv_bias;
  c["final_layernorm"] = final_norm;
  if (final_norm) c["final_layernorm_eps"] = blip2 ? kBlip2FinalNormEps : kEvaNormEps;
  c["hidden_dropout_prob"] = 0.0;
  c["attention_probs_dropout_prob"] = 0.0;
  c["initializer_range"] = 0.02;
  c["torch_dtype"] = dtype_name(cls_in.scalar_type());
  if (head) {
    c["id2label"] = nlohmann::json::object();
    c["label2id"] = nlohmann::json::object();
    for (int64_t k = 0; k < labels; ++k) {
      const std::string name = "LABEL_" + std::to_string(k);
      c["id2label"][std::to_string(k)] = name;
      c["label2id"][name] = k;
    }
  }
  return out;
}

EvaVitImport convert_eva_vit(const std::string& checkpoint, const std::string& entry, int64_t num_heads,
                             const std::string& out_dir) {
  EvaVitImport m = import_eva_vit(load_torch_bin(checkpoint, entry), checkpoint, num_heads);
  write_dir_atomically(out_dir, [&](const std::string& tmp) { write_hf_checkpoint_files(tmp, m.config, m.weights); });
  return m;
}

}  // namespace ot
