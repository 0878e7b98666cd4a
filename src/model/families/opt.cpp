// model/families/opt.cpp: OPT (facebook/opt-*). Learned positions offset by 2 and derived
// from the attention mask; pre-LN or post-LN (`do_layer_norm_before`, 350m is post-LN);
// project_in/out when word_embed_proj_dim != hidden_size; ReLU FFN; head tied to tokens.
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

constexpr int64_t kPositionOffset = 2;  // OPT reserves the first two position rows

class OPTAttentionImpl : public torch::nn::Module {
 public:
  explicit OPTAttentionImpl(const ModelConfig& c) : H(c.num_heads), D(c.head_dim), p_attn(c.attention_dropout) {
    auto o = nn::LinearOptions(c.hidden_size, c.hidden_size).with_bias(c.enable_bias);
    k_proj = register_module("k_proj", nn::Linear(o));
    v_proj = register_module("v_proj", nn::Linear(o));
    q_proj = register_module("q_proj", nn::Linear(o));
    out_proj = register_module("out_proj", nn::Linear(o));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
    auto q = heads(q_proj(x)), k = heads(k_proj(x)), v = heads(v_proj(x));  // (B, H, T, D)
    update_cache(cache, k, v);
    return out_proj(attend(q, k, v, ctx.bias, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t H, D;
  double p_attn;
  nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(OPTAttention);

class OPTBlock : public BlockBase {
 public:
  explicit OPTBlock(const ModelConfig& c)
      : pre_ln(c.do_layer_norm_before), act(c.activation), p_res(c.residual_dropout), p_act(c.activation_dropout) {
    auto ln = nn::LayerNormOptions(c.hidden_size).with_affine(c.layer_norm_elementwise_affine);
    self_attn = register_module("self_attn", OPTAttention(c));
    self_attn_layer_norm = register_module("self_attn_layer_norm", nn::LayerNorm(ln));
    auto b = c.enable_bias;
    fc1 = register_module("fc1", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size).with_bias(b)));
    fc2 = register_module("fc2", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size).with_bias(b)));
    final_layer_norm = register_module("final_layer_norm", nn::LayerNorm(ln));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override {
    auto h = pre_ln ? self_attn_layer_norm(x) : x;
    h = x + dropout_if(self_attn(h, ctx, cache), p_res, is_training());
    if (!pre_ln) h = self_attn_layer_norm(h);
    auto f = pre_ln ? final_layer_norm(h) : h;
    f = dropout_if(nn::activation(act, fc1(f)), p_act, is_training());
    h = h + dropout_if(fc2(f), p_res, is_training());
    if (!pre_ln) h = final_layer_norm(h);
    return h;
  }
  bool pre_ln;
  std::string act;
  double p_res, p_act;
  OPTAttention self_attn{nullptr};
  nn::LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};

class OPTEmbedder : public EmbedderBase {
 public:
  explicit OPTEmbedder(const ModelConfig& c) : p_emb(c.embedding_dropout) {
    embed_tokens = register_module(
        "embed_tokens", nn::Embedding(c.vocab_size, c.word_embed_proj_dim, c.pad_token_id.value_or(-1)));
    embed_positions = register_module(
        "embed_positions", nn::Embedding(c.max_positions + kPositionOffset, c.hidden_size));
    if (c.opt_projects())
      project_in = register_module(
          "project_in", nn::Linear(nn::LinearOptions(c.word_embed_proj_dim, c.hidden_size).with_bias(false)));
  }
  at::Tensor forward(const at::Tensor& ids, const AttentionContext& ctx) override {
    auto h = embed_tokens(ids);
    if (project_in) h = project_in(h);
    return dropout_if(h + embed_positions(ctx.position_ids + kPositionOffset), p_emb, is_training());
  }
  double p_emb;
  at::Tensor token_weight() override { return embed_tokens->weight; }
  nn::Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  nn::Linear project_in{nullptr};
};

class OPTHead : public HeadBase {
 public:
  explicit OPTHead(const ModelConfig& c) {
    if (c.opt_final_norm())
      final_layer_norm = register_module(
          "final_layer_norm",
          nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_affine(c.layer_norm_elementwise_affine)));
    if (c.opt_projects())
      project_out = register_module(
          "project_out", nn::Linear(nn::LinearOptions(c.hidden_size, c.word_embed_proj_dim).with_bias(false)));
  }
  at::Tensor normalize(const at::Tensor& h) override {
    auto y = final_layer_norm ? final_layer_norm(h) : h;
    return project_out ? project_out(y) : y;
  }
  nn::LayerNorm final_layer_norm{nullptr};
  nn::Linear project_out{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_opt_block(const ModelConfig& c, int64_t) {
  return std::make_shared<OPTBlock>(c);
}

FamilyParts make_opt(const ModelConfig& c) {
  FamilyParts p;
  p.embed = std::make_shared<OPTEmbedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_opt_block(c, i));
  p.head = std::make_shared<OPTHead>(c);
  p.base_prefix = "model.decoder.";
  p.block_prefix = "layers.";
  return p;
}

}  // namespace ot::families
