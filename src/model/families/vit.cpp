// model/families/vit.cpp: ViT (google/vit-*; ViTModel, ViTForImageClassification) as
// transformers 4.35 computes it: a Conv2d patch projection with bias, a learned class token
// and learned positions (bicubically resized for other image sizes when asked), pre-LN
// encoder layers with exact-erf GELU, a final LayerNorm; ViTModel's optional pooler (dense +
// tanh on the class token). EVA encoders converted to this layout (eva_vit) may have no final
// LayerNorm. The classifier lives in the model (model/vision_encoder.h).
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"
#include "util/error.h"

namespace ot::families {
namespace {

class ViTSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTSelfAttentionImpl(const ModelConfig& c) {
    auto o = nn::LinearOptions(c.hidden_size, c.hidden_size).with_bias(c.qkv_bias);
    query = register_module("query", nn::Linear(o));
    key = register_module("key", nn::Linear(o));
    value = register_module("value", nn::Linear(o));
  }
  nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(ViTSelfAttention);

// HF's ViTAttention: `attention` (q, k, v) and `output.dense`.
class ViTAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTAttentionImpl(const ModelConfig& c) : H(c.num_heads), D(c.head_dim), p_attn(c.attention_dropout) {
    attention = register_module("attention", ViTSelfAttention(c));
    auto out = std::make_shared<torch::nn::Module>();
    dense = out->register_module("dense", nn::Linear(nn::LinearOptions(c.hidden_size, c.hidden_size)));
    register_module("output", out);
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };  // (B, H, T, D)
    auto q = heads(attention->query(x)), k = heads(attention->key(x)), v = heads(attention->value(x));
    return dense(attend_bidirectional(q, k, v, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t H, D;
  double p_attn;
  ViTSelfAttention attention{nullptr};
  nn::Linear dense{nullptr};
};
TORCH_MODULE(ViTAttention);

class ViTBlock : public BlockBase {
 public:
  explicit ViTBlock(const ModelConfig& c) : act(c.activation), p_res(c.residual_dropout) {
    auto ln = nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps);
    attention = register_module("attention", ViTAttention(c));
    auto inter = std::make_shared<torch::nn::Module>();
    intermediate = inter->register_module(
        "dense", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size)));
    register_module("intermediate", inter);
    auto out = std::make_shared<torch::nn::Module>();
    output = out->register_module("dense", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size)));
    register_module("output", out);
    layernorm_before = register_module("layernorm_before", nn::LayerNorm(ln));
    layernorm_after = register_module("layernorm_after", nn::LayerNorm(ln));
  }
  // x (B, T, C) -> (B, T, C); encoders attend both ways and keep no cache.
  at::Tensor forward(const at::Tensor& x, const AttentionContext&, LayerKV*) override {
    auto h = x + dropout_if(attention(layernorm_before(x)), p_res, is_training());
    auto f = nn::activation(act, intermediate(layernorm_after(h)));
    return h + dropout_if(output(f), p_res, is_training());
  }
  std::string act;
  double p_res;
  ViTAttention attention{nullptr};
  nn::Linear intermediate{nullptr}, output{nullptr};
  nn::LayerNorm layernorm_before{nullptr}, layernorm_after{nullptr};
};

// HF's ViTEmbeddings with its `patch_embeddings.projection`.
class ViTEmbedder : public PatchEmbedderBase {
 public:
  explicit ViTEmbedder(const ModelConfig& c) : p_emb(c.residual_dropout), eva(c.eva) {
    auto emb = std::make_shared<torch::nn::Module>();
    cls_token = emb->register_parameter("cls_token", torch::empty({1, 1, c.hidden_size}));
    position_embeddings = emb->register_parameter("position_embeddings",
                                                  torch::empty({1, c.num_patches() + 1, c.hidden_size}));
    auto patches = std::make_shared<torch::nn::Module>();
    projection = patches->register_module("projection",
                                          nn::PatchConv(c.num_channels, c.hidden_size, c.patch_size, true));
    emb->register_module("patch_embeddings", patches);
    register_module("embeddings", emb);
  }
  at::Tensor forward(const at::Tensor& pixels, bool interpolate) override {
    auto grid = projection(pixels);  // (B, C, h, w)
    const int64_t B = grid.size(0), h = grid.size(2), w = grid.size(3);
    auto tokens = torch::cat({cls_token.expand({B, 1, cls_token.size(2)}), grid.flatten(2).transpose(1, 2)}, 1);
    // EVA resizes as LAVIS's interpolate_pos_embed does: to the grid's size, not by a scale.
    auto positions = interpolate ? nn::resize_patch_positions(position_embeddings, h, w, /*vit_4_35=*/!eva)
                                 : position_embeddings;
    return dropout_if(tokens + positions, p_emb, is_training());
  }
  double p_emb;
  bool eva;
  at::Tensor cls_token, position_embeddings;
  nn::PatchConv projection{nullptr};
};

class ViTHead : public VisionHeadBase {
 public:
  explicit ViTHead(const ModelConfig& c) {
    if (c.vit_final_norm)
      layernorm = register_module("layernorm", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.vit_final_norm_eps())));
    if (c.vit_pooler) {
      auto pool = std::make_shared<torch::nn::Module>();
      pooler = pool->register_module("dense", nn::Linear(nn::LinearOptions(c.hidden_size, c.hidden_size)));
      register_module("pooler", pool);
    }
  }
  at::Tensor sequence(const at::Tensor& h) override { return layernorm ? layernorm(h) : h; }
  at::Tensor pooled(const at::Tensor& h) override {
    auto first = sequence(h).select(1, 0);  // the class token (B, C)
    return pooler ? torch::tanh(pooler(first)) : first;
  }
  nn::LayerNorm layernorm{nullptr};
  nn::Linear pooler{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_vit_block(const ModelConfig& c, int64_t) { return std::make_shared<ViTBlock>(c); }

VisionParts make_vit(const ModelConfig& c) {
  VisionParts p;
  p.embed = std::make_shared<ViTEmbedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_vit_block(c, i));
  p.head = std::make_shared<ViTHead>(c);
  p.base_prefix = "vit.";
  p.block_prefix = "encoder.layer.";
  return p;
}

}  // namespace ot::families
