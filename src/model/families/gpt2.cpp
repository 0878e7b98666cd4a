// model/families/gpt2.cpp: GPT-2. Conv1D weights stored (in, out); fused c_attn producing
// q, k, v; learned absolute positions (arange, or given position_ids); gelu_new; pre-LN
// blocks; final ln_f; head tied to the token table.
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

class GPT2AttentionImpl : public torch::nn::Module {
 public:
  GPT2AttentionImpl(const ModelConfig& c, int64_t layer_index)
      : C(c.hidden_size), H(c.num_heads), D(c.head_dim), p_attn(c.attention_dropout), p_res(c.residual_dropout) {
    c_attn = register_module("c_attn", nn::Conv1D(C, 3 * C));
    c_proj = register_module("c_proj", nn::Conv1D(C, C));
    scale = c.scale_attn_weights ? 1.0 / std::sqrt(double(D)) : 1.0;
    if (c.scale_attn_by_inverse_layer_idx) scale /= double(layer_index + 1);
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    auto qkv = c_attn(x).split(C, -1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
    auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);  // (B, H, T, D)
    update_cache(cache, k, v);
    auto y = c_proj(attend(q, k, v, ctx.bias, scale, is_training() ? p_attn : 0.0));
    return dropout_if(y, p_res, is_training());
  }
  int64_t C, H, D;
  double scale, p_attn, p_res;
  nn::Conv1D c_attn{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(GPT2Attention);

class GPT2MLPImpl : public torch::nn::Module {
 public:
  explicit GPT2MLPImpl(const ModelConfig& c) : act(c.activation), p_res(c.residual_dropout) {
    c_fc = register_module("c_fc", nn::Conv1D(c.hidden_size, c.intermediate_size));
    c_proj = register_module("c_proj", nn::Conv1D(c.intermediate_size, c.hidden_size));
  }
  at::Tensor forward(const at::Tensor& x) {
    return dropout_if(c_proj(nn::activation(act, c_fc(x))), p_res, is_training());
  }
  std::string act;
  double p_res;
  nn::Conv1D c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(GPT2MLP);

class GPT2Block : public BlockBase {
 public:
  GPT2Block(const ModelConfig& c, int64_t layer_index) {
    auto ln = nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps);
    ln_1 = register_module("ln_1", nn::LayerNorm(ln));
    attn = register_module("attn", GPT2Attention(c, layer_index));
    ln_2 = register_module("ln_2", nn::LayerNorm(ln));
    mlp = register_module("mlp", GPT2MLP(c));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override {
    auto h = x + attn(ln_1(x), ctx, cache);
    return h + mlp(ln_2(h));
  }
  nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  GPT2Attention attn{nullptr};
  GPT2MLP mlp{nullptr};
};

class GPT2Embedder : public EmbedderBase {
 public:
  explicit GPT2Embedder(const ModelConfig& c) : p_emb(c.embedding_dropout) {
    wte = register_module("wte", nn::Embedding(c.vocab_size, c.hidden_size));
    wpe = register_module("wpe", nn::Embedding(c.max_positions, c.hidden_size));
  }
  at::Tensor forward(const at::Tensor& ids, const AttentionContext& ctx) override {
    return dropout_if(wte(ids) + wpe(ctx.position_ids), p_emb, is_training());
  }
  double p_emb;
  at::Tensor token_weight() override { return wte->weight; }
  nn::Embedding wte{nullptr}, wpe{nullptr};
};

class GPT2Head : public HeadBase {
 public:
  explicit GPT2Head(const ModelConfig& c) {
    ln_f = register_module("ln_f", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps)));
  }
  at::Tensor normalize(const at::Tensor& h) override { return ln_f(h); }
  nn::LayerNorm ln_f{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_gpt2_block(const ModelConfig& c, int64_t layer_index) {
  return std::make_shared<GPT2Block>(c, layer_index);
}

FamilyParts make_gpt2(const ModelConfig& c) {
  FamilyParts p;
  p.embed = std::make_shared<GPT2Embedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_gpt2_block(c, i));
  p.head = std::make_shared<GPT2Head>(c);
  p.base_prefix = "transformer.";
  p.block_prefix = "h.";
  return p;
}

}  // namespace ot::families
