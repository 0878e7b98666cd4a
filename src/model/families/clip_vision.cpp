// model/families/clip_vision.cpp: CLIP's vision tower (openai/clip-vit-*; CLIPVisionModel,
// CLIPVisionModelWithProjection, the vision half of CLIPModel) as transformers 4.35 computes
// it: a Conv2d patch projection without bias, a class embedding and learned positions, a
// LayerNorm before the encoder (`pre_layrnorm`, HF's spelling), pre-LN encoder layers with
// quick_gelu, and `post_layernorm` on the pooled class token only. The projection lives in
// the model (model/vision_encoder.h). Positions are resized for other image sizes when asked,
// to the target grid directly, as later transformers versions do (4.35's CLIP has no resizing).
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

class CLIPAttentionImpl : public torch::nn::Module {
 public:
  explicit CLIPAttentionImpl(const ModelConfig& c) : H(c.num_heads), D(c.head_dim), p_attn(c.attention_dropout) {
    auto o = nn::LinearOptions(c.hidden_size, c.hidden_size);
    k_proj = register_module("k_proj", nn::Linear(o));
    v_proj = register_module("v_proj", nn::Linear(o));
    q_proj = register_module("q_proj", nn::Linear(o));
    out_proj = register_module("out_proj", nn::Linear(o));
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };  // (B, H, T, D)
    auto q = heads(q_proj(x)), k = heads(k_proj(x)), v = heads(v_proj(x));
    return out_proj(attend_bidirectional(q, k, v, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t H, D;
  double p_attn;
  nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(CLIPAttention);

class CLIPBlock : public BlockBase {
 public:
  explicit CLIPBlock(const ModelConfig& c) : act(c.activation) {
    auto ln = nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps);
    self_attn = register_module("self_attn", CLIPAttention(c));
    layer_norm1 = register_module("layer_norm1", nn::LayerNorm(ln));
    auto mlp = std::make_shared<torch::nn::Module>();
    fc1 = mlp->register_module("fc1", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size)));
    fc2 = mlp->register_module("fc2", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size)));
    register_module("mlp", mlp);
    layer_norm2 = register_module("layer_norm2", nn::LayerNorm(ln));
  }
  // x (B, T, C) -> (B, T, C); encoders attend both ways and keep no cache.
  at::Tensor forward(const at::Tensor& x, const AttentionContext&, LayerKV*) override {
    auto h = x + self_attn(layer_norm1(x));
    return h + fc2(nn::activation(act, fc1(layer_norm2(h))));
  }
  std::string act;
  CLIPAttention self_attn{nullptr};
  nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};

// HF's CLIPVisionEmbeddings followed by the tower's pre_layrnorm: what block 0 receives.
class CLIPEmbedder : public PatchEmbedderBase {
 public:
  explicit CLIPEmbedder(const ModelConfig& c) {
    auto emb = std::make_shared<torch::nn::Module>();
    class_embedding = emb->register_parameter("class_embedding", torch::empty({c.hidden_size}));
    patch_embedding = emb->register_module("patch_embedding",
                                           nn::PatchConv(c.num_channels, c.hidden_size, c.patch_size, false));
    position_embedding = emb->register_module("position_embedding", nn::Embedding(c.num_patches() + 1, c.hidden_size));
    register_module("embeddings", emb);
    pre_layrnorm = register_module("pre_layrnorm", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps)));
  }
  at::Tensor forward(const at::Tensor& pixels, bool interpolate) override {
    auto grid = patch_embedding(pixels);  // (B, C, h, w)
    const int64_t B = grid.size(0), C = grid.size(1), h = grid.size(2), w = grid.size(3);
    auto tokens = torch::cat({class_embedding.view({1, 1, C}).expand({B, 1, C}), grid.flatten(2).transpose(1, 2)}, 1);
    auto positions = position_embedding->weight.unsqueeze(0);  // (1, 1 + N, C)
    if (interpolate) positions = nn::resize_patch_positions(positions, h, w, /*vit_4_35=*/false);
    return pre_layrnorm(tokens + positions);
  }
  at::Tensor class_embedding;
  nn::PatchConv patch_embedding{nullptr};
  nn::Embedding position_embedding{nullptr};
  nn::LayerNorm pre_layrnorm{nullptr};
};

class CLIPHead : public VisionHeadBase {
 public:
  explicit CLIPHead(const ModelConfig& c) {
    post_layernorm =
        register_module("post_layernorm", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps)));
  }
  at::Tensor sequence(const at::Tensor& h) override { return h; }
  at::Tensor pooled(const at::Tensor& h) override { return post_layernorm(h.select(1, 0)); }
  nn::LayerNorm post_layernorm{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_clip_vision_block(const ModelConfig& c, int64_t) {
  return std::make_shared<CLIPBlock>(c);
}

VisionParts make_clip_vision(const ModelConfig& c) {
  VisionParts p;
  p.embed = std::make_shared<CLIPEmbedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_clip_vision_block(c, i));
  p.head = std::make_shared<CLIPHead>(c);
  p.base_prefix = "vision_model.";
  p.block_prefix = "encoder.layers.";
  return p;
}

}  // namespace ot::families
