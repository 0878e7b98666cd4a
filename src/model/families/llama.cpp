// model/families/llama.cpp: the RoPE decoder block shared by LLaMA and its relatives, as
// transformers 4.55 computes them (and LLaMA as 4.35 did): RMSNorm before attention and MLP,
// rotary position embedding (rotate-half, `rope_theta`, `rope_scaling`), grouped-query
// attention (`num_key_value_heads`), a gated MLP down(act(gate(x)) * up(x)), untied head
// unless `tie_word_embeddings`. What differs between the families is read from ModelConfig
// (model/config.h) as options of the one block:
//   LLaMA    bias on q/k/v/o per `attention_bias`, MLP bias per `mlp_bias`
//   Mistral  sliding-window attention (`sliding_window`), no biases
//   Qwen2    bias on q/k/v only; sliding window on the layers config.json names
//   Gemma    RMSNorm x_hat * (1 + w), embeddings times sqrt(hidden), GeGLU, explicit head_dim
//   Phi-3    fused qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up] rows), residual dropout
// A block knows its layer index in the original model (make_llama_block), which decides
// whether it attends within the sliding window; offsite bundles keep that index.
#include <torch/torch.h>

#include "model/block.h"
#include "model/layers.h"

namespace ot::families {
namespace {

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const ModelConfig& c, bool sliding)
      : H(c.num_heads), Hkv(c.num_kv_heads), D(c.head_dim), p_attn(c.attention_dropout), sliding(sliding) {
    const int64_t C = c.hidden_size;
    const bool b = c.qkv_bias;
    if (c.fused_projections) {
      qkv_proj = register_module("qkv_proj", nn::Linear(nn::LinearOptions(C, (H + 2 * Hkv) * D).with_bias(b)));
    } else {
      q_proj = register_module("q_proj", nn::Linear(nn::LinearOptions(C, H * D).with_bias(b)));
      k_proj = register_module("k_proj", nn::Linear(nn::LinearOptions(C, Hkv * D).with_bias(b)));
      v_proj = register_module("v_proj", nn::Linear(nn::LinearOptions(C, Hkv * D).with_bias(b)));
    }
    o_proj = register_module("o_proj", nn::Linear(nn::LinearOptions(H * D, C).with_bias(c.attention_bias)));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    at::Tensor q, k, v;
    if (qkv_proj) {
      auto qkv = qkv_proj(x);
      q = qkv.narrow(-1, 0, H * D);
      k = qkv.narrow(-1, H * D, Hkv * D);
      v = qkv.narrow(-1, (H + Hkv) * D, Hkv * D);
    } else {
      q = q_proj(x);
      k = k_proj(x);
      v = v_proj(x);
    }
    q = q.view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
    k = k.view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    v = v.view({B, T, Hkv, D}).transpose(1, 2);
    q = apply_rope(q, ctx.rope_cos, ctx.rope_sin);
    k = apply_rope(k, ctx.rope_cos, ctx.rope_sin);
    update_cache(cache, k, v);
    const at::Tensor& bias = sliding ? ctx.window_bias : ctx.bias;
    return o_proj(attend(q, k, v, bias, 1.0 / std::sqrt(double(D)), is_training() ? p_attn : 0.0));
  }
  int64_t H, Hkv, D;
  double p_attn;
  bool sliding;
  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, qkv_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const ModelConfig& c) : act(c.activation), I(c.intermediate_size) {
    const int64_t C = c.hidden_size;
    const bool b = c.mlp_bias;
    if (c.fused_projections) {
      gate_up_proj = register_module("gate_up_proj", nn::Linear(nn::LinearOptions(C, 2 * I).with_bias(b)));
    } else {
      gate_proj = register_module("gate_proj", nn::Linear(nn::LinearOptions(C, I).with_bias(b)));
      up_proj = register_module("up_proj", nn::Linear(nn::LinearOptions(C, I).with_bias(b)));
    }
    down_proj = register_module("down_proj", nn::Linear(nn::LinearOptions(I, C).with_bias(b)));
  }
  at::Tensor forward(const at::Tensor& x) {
    if (gate_up_proj) {
      auto gu = gate_up_proj(x);
      return down_proj(gu.narrow(-1, I, I) * nn::activation(act, gu.narrow(-1, 0, I)));
    }
    return down_proj(nn::activation(act, gate_proj(x)) * up_proj(x));
  }
  std::string act;
  int64_t I;
  nn::Linear gate_proj{nullptr}, up_proj{nullptr}, gate_up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

class LlamaBlock : public BlockBase {
 public:
  LlamaBlock(const ModelConfig& c, int64_t layer_index) : p_resid(c.residual_dropout) {
    input_layernorm = register_module("input_layernorm", nn::RMSNorm(c.hidden_size, c.norm_eps, c.norm_plus_one));
    self_attn = register_module("self_attn", LlamaAttention(c, c.layer_slides(layer_index)));
    post_attention_layernorm =
        register_module("post_attention_layernorm", nn::RMSNorm(c.hidden_size, c.norm_eps, c.norm_plus_one));
    mlp = register_module("mlp", LlamaMLP(c));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionContext& ctx, LayerKV* cache) override {
    auto h = x + dropout_if(self_attn(input_layernorm(x), ctx, cache), p_resid, is_training());
    return h + dropout_if(mlp(post_attention_layernorm(h)), p_resid, is_training());
  }
  double p_resid;
  nn::RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
};

class LlamaEmbedder : public EmbedderBase {
 public:
  explicit LlamaEmbedder(const ModelConfig& c) : scale(c.embedding_scale) {
    embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size, c.pad_token_id.value_or(-1)));
  }
  at::Tensor forward(const at::Tensor& ids, const AttentionContext&) override {
    auto h = embed_tokens(ids);
    // Gemma: the normaliser is a tensor of the hidden dtype (sqrt(hidden) rounded to it).
    if (scale > 0.0) h = h * torch::scalar_tensor(scale, h.options());
    return h;
  }
  at::Tensor token_weight() override { return embed_tokens->weight; }
  double scale;
  nn::Embedding embed_tokens{nullptr};
};

class LlamaHead : public HeadBase {
 public:
  explicit LlamaHead(const ModelConfig& c) {
    norm = register_module("norm", nn::RMSNorm(c.hidden_size, c.norm_eps, c.norm_plus_one));
  }
  at::Tensor normalize(const at::Tensor& h) override { return norm(h); }
  nn::RMSNorm norm{nullptr};
};

}  // namespace

std::shared_ptr<BlockBase> make_llama_block(const ModelConfig& c, int64_t layer_index) {
  return std::make_shared<LlamaBlock>(c, layer_index);
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
