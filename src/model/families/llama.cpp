// model/families/llama.cpp: LLaMA. RMSNorm, rotary position embedding (rotate-half,
// `rope_theta`), grouped-query attention (`num_key_value_heads`), SwiGLU FFN
// (down(silu(gate(x)) * up(x))), untied head unless `tie_word_embeddings`.
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const ModelConfig& c)
      : H(c.num_heads), Hkv(c.num_kv_heads), D(c.head_dim), p_attn(c.attention_dropout) {
    auto b = c.attention_bias;
    q_proj = register_module("q_proj", nn::Linear(nn::LinearOptions(c.hidden_size, H * D).with_bias(b)));
    k_proj = register_module("k_proj", nn::Linear(nn::LinearOptions(c.hidden_size, Hkv * D).with_bias(b)));
    v_proj = register_module("v_proj", nn::Linear(nn::LinearOptions(c.hidden_size, Hkv * D).with_bias(b)));
    o_proj = register_module("o_proj", nn::Linear(nn::LinearOptions(H * D, c.hidden_size).with_bias(b)));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    auto q = q_proj(x).view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
    auto k = k_proj(x).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    auto v = v_proj(x).view({B, T, Hkv, D}).transpose(1, 2);
    q = apply_rope(q, ctx.rope_cos, ctx.rope_sin);
    k = apply_rope(k, ctx.rope_cos, ctx.rope_sin);
    update_cache(cache, k, v);
    return o_proj(attend(q, k, v, ctx.bias, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t H, Hkv, D;
  double p_attn;
  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const ModelConfig& c) {
    auto b = c.mlp_bias;
    gate_proj = register_module("gate_proj", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size).with_bias(b)));
    up_proj = register_module("up_proj", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size).with_bias(b)));
    down_proj = register_module("down_proj", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size).with_bias(b)));
  }
  at::Tensor forward(const at::Tensor& x) { return down_proj(torch::silu(gate_proj(x)) * up_proj(x)); }
  nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

class LlamaBlock : public BlockBase {
 public:
  explicit LlamaBlock(const ModelConfig& c) {
    input_layernorm = register_module("input_layernorm", nn::RMSNorm(c.hidden_size, c.norm_eps));
    self_attn = register_module("self_attn", LlamaAttention(c));
    post_attention_layernorm = register_module("post_attention_layernorm", nn::RMSNorm(c.hidden_size, c.norm_eps));
    mlp = register_module("mlp", LlamaMLP(c));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override {
    auto h = x + self_attn(input_layernorm(x), ctx, cache);
    return h + mlp(post_attention_layernorm(h));
  }
  nn::RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
};

class LlamaEmbedder : public EmbedderBase {
 public:
  explicit LlamaEmbedder(const ModelConfig& c) {
    embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size, c.pad_token_id.value_or(-1)));
  }
  at::Tensor forward(const at::Tensor& ids, const AttentionContext&) override { return embed_tokens(ids); }
  at::Tensor token_weight() override { return embed_tokens->weight; }
  nn::Embedding embed_tokens{nullptr};
};

class LlamaHead : public HeadBase {
 public:
  explicit LlamaHead(const ModelConfig& c) {
    norm = register_module("norm", nn::RMSNorm(c.hidden_size, c.norm_eps));
  }
  at::Tensor normalize(const at::Tensor& h) override { return norm(h); }
  nn::RMSNorm norm{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_llama_block(const ModelConfig& c, int64_t) {
  return std::make_shared<LlamaBlock>(c);
}

FamilyParts make_llama(const ModelConfig& c) {
  FamilyParts p;
  p.embed = std::make_shared<LlamaEmbedder>(c);
  for (int64_t i = 0; i < c.num_layers; ++i) p.blocks.push_back(make_llama_block(c, i));
  p.head = std::make_shared<LlamaHead>(c);
  p.base_prefix = "model.";
  p.block_prefix = "layers.";
  return p;
}

}  // namespace ot::families
