// model/families/bloom.cpp: BLOOM. ALiBi position bias built from the attention mask (no
// position embeddings); a LayerNorm right after the token embedding; fused
// query_key_value whose output is laid out per head as [q | k | v] (B, T, H, 3, D);
// BLOOM's tanh gelu; optional residual taken after the layer norm.
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

class BloomAttentionImpl : public torch::nn::Module {
 public:
  explicit BloomAttentionImpl(const ModelConfig& c)
      : C(c.hidden_size), H(c.num_heads), D(c.head_dim), p_attn(c.attention_dropout) {
    query_key_value = register_module("query_key_value", nn::Linear(nn::LinearOptions(C, 3 * C)));
    dense = register_module("dense", nn::Linear(nn::LinearOptions(C, C)));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    auto fused = query_key_value(x).view({B, T, H, 3, D});
    auto q = fused.select(3, 0).transpose(1, 2);  // (B, H, T, D)
    auto k = fused.select(3, 1).transpose(1, 2);
    auto v = fused.select(3, 2).transpose(1, 2);
    update_cache(cache, k, v);
    return dense(attend(q, k, v, ctx.bias, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t C, H, D;
  double p_attn;
  nn::Linear query_key_value{nullptr}, dense{nullptr};
};
TORCH_MODULE(BloomAttention);

class BloomMLPImpl : public torch::nn::Module {
 public:
  explicit BloomMLPImpl(const ModelConfig& c) {
    dense_h_to_4h = register_module("dense_h_to_4h", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size)));
    dense_4h_to_h = register_module("dense_4h_to_h", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size)));
  }
  at::Tensor forward(const at::Tensor& x) {
    return dense_4h_to_h(nn::activation("bloom_gelu", dense_h_to_4h(x)));
  }
  nn::Linear dense_h_to_4h{nullptr}, dense_4h_to_h{nullptr};
};
TORCH_MODULE(BloomMLP);

class BloomBlock : public BlockBase {
 public:
  explicit BloomBlock(const ModelConfig& c)
      : residual_after_norm(c.apply_residual_connection_post_layernorm), p_res(c.residual_dropout) {
    auto ln = nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps);
    input_layernorm = register_module("input_layernorm", nn::LayerNorm(ln));
    self_attention = register_module("self_attention", BloomAttention(c));
    post_attention_layernorm = register_module("post_attention_layernorm", nn::LayerNorm(ln));
    mlp = register_module("mlp", BloomMLP(c));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override {
    auto n1 = input_layernorm(x);
    auto h = (residual_after_norm ? n1 : x) + dropout_if(self_attention(n1, ctx, cache), p_res, is_training());
    auto n2 = post_attention_layernorm(h);
    return (residual_after_norm ? n2 : h) + dropout_if(mlp(n2), p_res, is_training());
  }
  bool residual_after_norm;
  double p_res;
  nn::LayerNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  BloomAttention self_attention{nullptr};
  BloomMLP mlp{nullptr};
};

class BloomEmbedder : public EmbedderBase {
 public:
  explicit BloomEmbedder(const ModelConfig& c) {
    word_embeddings = register_module("word_embeddings", nn::Embedding(c.vocab_size, c.hidden_size));
    word_embeddings_layernorm = register_module(
        "word_embeddings_layernorm", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps)));
  }
  at::Tensor forward(const at::Tensor& ids, const AttentionContext&) override {
    return word_embeddings_layernorm(word_embeddings(ids));
  }
  at::Tensor token_weight() override { return word_embeddings->weight; }
  nn::Embedding word_embeddings{nullptr};
  nn::LayerNorm word_embeddings_layernorm{nullptr};
};

class BloomHead : public HeadBase {
 public:
  explicit BloomHead(const ModelConfig& c) {
    ln_f = register_module("ln_f", nn::LayerNorm(nn::LayerNormOptions(c.hidden_size).with_eps(c.norm_eps)));
  }
  at::Tensor normalize(const at::Tensor& h) override { return ln_f(h); }
  nn::LayerNorm ln_f{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_bloom_block(const ModelConfig& c, int64_t) {
  return std::make_shared<BloomBlock>(c);
}

FamilyParts make_bloom(const ModelConfig& c) {
  FamilyParts p;
  p.embed = std::make_shared<BloomEmbedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_bloom_block(c, i));
  p.head = std::make_shared<BloomHead>(c);
  p.base_prefix = "transformer.";
  p.block_prefix = "h.";
  return p;
}

}  // namespace ot::families
