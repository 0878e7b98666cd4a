// model/decoder_lm.cpp: see decoder_lm.h.
#include "model/decoder_lm.h"

#include <torch/torch.h>

#include "model/precision.h"
#include "util/error.h"

namespace ot {

FamilyParts make_family_parts(const ModelConfig& c) {
  switch (c.arch) {
    case Arch::kOPT: return families::make_opt(c);
    case Arch::kGPT2: return families::make_gpt2(c);
    case Arch::kBloom: return families::make_bloom(c);
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kGemma:
    case Arch::kPhi3: return families::make_llama(c);
    case Arch::kViT:
    case Arch::kCLIPVision: break;
  }
  fail("model_type '", arch_name(c.arch), "' is a vision encoder, not a decoder language model");
}

std::shared_ptr<BlockBase> make_block(const ModelConfig& c, int64_t layer_index) {
  switch (c.arch) {
    case Arch::kOPT: return families::make_opt_block(c, layer_index);
    case Arch::kGPT2: return families::make_gpt2_block(c, layer_index);
    case Arch::kBloom: return families::make_bloom_block(c, layer_index);
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kGemma:
    case Arch::kPhi3: return families::make_llama_block(c, layer_index);
    case Arch::kViT: return families::make_vit_block(c, layer_index);
    case Arch::kCLIPVision: return families::make_clip_vision_block(c, layer_index);
  }
  fail("unknown architecture");
}

DecoderLMImpl::DecoderLMImpl(const ModelConfig& config) : DecoderLMImpl(config, make_family_parts(config)) {}

DecoderLMImpl::DecoderLMImpl(const ModelConfig& config, FamilyParts parts)
    : BlockModelImpl(config, parts.base_prefix, parts.block_prefix) {
  embed_ = parts.embed;
  head_ = parts.head;
  adopt_parts(parts.embed, std::move(parts.blocks), parts.head);
  if (!config_.tie_word_embeddings) {
    int64_t e = config_.arch == Arch::kOPT ? config_.word_embed_proj_dim : config_.hidden_size;
    lm_head_ = register_module("lm_head", nn::Linear(nn::LinearOptions(e, config_.vocab_size).with_bias(false)));
  }
}

AttentionContext DecoderLMImpl::make_context(const at::Tensor& ids, const at::Tensor& key_mask,
                                             const at::Tensor& position_ids,
                                             int64_t past) const {
  OT_REQUIRE(ids.dim() == 2, "input_ids: expected shape (batch, tokens), got ", ids.sizes());
  const int64_t B = ids.size(0), T = ids.size(1), S = past + T;
  const auto dev = ids.options();
  if (key_mask.defined())
    OT_REQUIRE(key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == S,
               "attention_mask: expected shape (", B, ", ", S, "), got ", key_mask.sizes());
  if (position_ids.defined())
    OT_REQUIRE(position_ids.dim() == 2 && position_ids.size(0) == B && position_ids.size(1) == T,
               "position_ids: expected shape (", B, ", ", T, "), got ", position_ids.sizes());

  AttentionContext ctx;
  ctx.past_length = past;
  const at::ScalarType dtype = compute_dtype(device(), this->dtype());
  const bool padded = key_mask.defined() && !key_mask.to(torch::kBool).all().item<bool>();

  // Positions of the new tokens.
  if (position_ids.defined()) {
    ctx.position_ids = position_ids.to(dev.dtype(torch::kLong));
  } else if (config_.arch == Arch::kOPT && key_mask.defined()) {
    auto m = key_mask.to(dev.dtype(torch::kLong));
    ctx.position_ids = ((m.cumsum(1) * m) - 1).narrow(1, past, T);  // pads get -1 (row 1 after offset)
  } else {
    ctx.position_ids = torch::arange(past, S, dev.dtype(torch::kLong)).unsqueeze(0).expand({B, T});
  }
  if (config_.max_positions > 0 && !is_rope_decoder(config_.arch)) {
    int64_t top = ctx.position_ids.numel() ? ctx.position_ids.max().item<int64_t>() : 0;
    OT_REQUIRE(top < config_.max_positions, "sequence position ", top, " exceeds the model's ",
               config_.max_positions, " learned positions (max_position_embeddings)");
  }

  // Attention bias: causal + padding (+ ALiBi).
  const bool need_mask = padded || (past > 0 && T > 1);
  if (config_.arch == Arch::kBloom) {
    at::Tensor km = key_mask.defined() ? key_mask : torch::ones({B, S}, dev.dtype(torch::kLong));
    auto allowed = causal_padding_allowed(km, B, T, past, dev);
    ctx.bias = alibi_bias(km, config_.num_heads, dtype) + additive_bias(allowed, dtype);
  } else if (padded && config_.summed_padding_mask) {
    ctx.bias = additive_bias_summed(key_mask, B, T, past, dtype);
  } else if (need_mask) {
    // OPT clamps its scores at the lowest value, so masked keys all end up equal.
    ctx.bias = additive_bias(causal_padding_allowed(padded ? key_mask : at::Tensor(), B, T, past, dev), dtype);
  }
  // Sliding-window blocks: the window masks keys only once there are more than it holds.
  const int64_t window = config_.sliding_window;
  if (window > 0 && S > window) {
    auto allowed = causal_padding_allowed(padded ? key_mask : at::Tensor(), B, T, past, dev);
    ctx.window_bias = additive_bias(within_window(allowed, T, past, window), dtype);
  } else {
    ctx.window_bias = ctx.bias;
  }
  if (is_rope_decoder(config_.arch)) {
    // Dynamic NTK scaling depends on the longest position of this forward.
    const int64_t seq_len = config_.rope_scaling.kind == RopeScaling::Kind::kDynamic && ctx.position_ids.numel() > 0
                                ? ctx.position_ids.max().item<int64_t>() + 1
                                : 0;
    auto inv_freq = rope_inv_freq(config_.head_dim, config_.rope_theta, config_.rope_scaling, config_.max_positions,
                                  seq_len, dev);
    rope_tables(ctx.position_ids, inv_freq, dtype, ctx.rope_cos, ctx.rope_sin);
  }
  return ctx;
}

at::Tensor DecoderLMImpl::embed(const at::Tensor& ids, const AttentionContext& ctx) {
  return embed_->forward(ids, ctx);
}

bool DecoderLMImpl::ignorable_key(const std::string& key) const {
  if (key == "lm_head.weight" && config_.tie_word_embeddings) return true;  // the tied copy
  return BlockModelImpl::ignorable_key(key);
}

at::Tensor DecoderLMImpl::head(const at::Tensor& h) {
  auto y = head_->normalize(h);
  return torch::nn::functional::linear(y, lm_head_ ? lm_head_->weight : embed_->token_weight());
}

ForwardOutput DecoderLMImpl::forward(const at::Tensor& ids, const at::Tensor& key_mask,
                                     const at::Tensor& position_ids, const ForwardOptions& opts) {
  const int64_t past = opts.cache ? opts.cache->length : 0;
  if (opts.cache && opts.cache->layers.size() != blocks_.size()) opts.cache->layers.resize(blocks_.size());
  AttentionContext ctx = make_context(ids, key_mask, position_ids, past);
  ForwardOutput out;
  at::Tensor h = embed(ids, ctx);
  if (opts.hidden_states) out.embeddings = h;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    h = run_block(static_cast<int64_t>(i), h, ctx, opts.cache ? &opts.cache->layers[i] : nullptr);
    if (opts.hidden_states) out.block_outputs.push_back(h);
  }
  if (opts.cache) opts.cache->length = past + ids.size(1);
  out.logits = head(h);
  return out;
}

void check_token_ids(const at::Tensor& ids, int64_t vocab_size, const std::string& source) {
  if (ids.numel() == 0) return;
  int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  OT_REQUIRE(lo >= 0 && hi < vocab_size, source, ": token id ", (lo < 0 ? lo : hi),
             " is outside the vocabulary [0, ", vocab_size, ")");
}

}  // namespace ot
