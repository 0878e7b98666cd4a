// model/decoder_lm.cpp: see decoder_lm.h.
#include "model/decoder_lm.h"

#include <torch/torch.h>

#include <set>
#include <sstream>

#include "model/activation_checkpoint.h"
#include "model/precision.h"
#include "util/error.h"

namespace ot {

FamilyParts make_family_parts(const ModelConfig& c) {
  switch (c.arch) {
    case Arch::kOPT: return families::make_opt(c);
    case Arch::kGPT2: return families::make_gpt2(c);
    case Arch::kBloom: return families::make_bloom(c);
    case Arch::kLlama: return families::make_llama(c);
  }
  fail("unknown architecture");
}

std::shared_ptr<BlockBase> make_block(const ModelConfig& c, int64_t layer_index) {
  switch (c.arch) {
    case Arch::kOPT: return families::make_opt_block(c, layer_index);
    case Arch::kGPT2: return families::make_gpt2_block(c, layer_index);
    case Arch::kBloom: return families::make_bloom_block(c, layer_index);
    case Arch::kLlama: return families::make_llama_block(c, layer_index);
  }
  fail("unknown architecture");
}

DecoderLMImpl::DecoderLMImpl(const ModelConfig& config) : config_(config) {
  FamilyParts parts = make_family_parts(config_);
  base_prefix_ = parts.base_prefix;
  block_prefix_ = parts.block_prefix;
  embed_ = register_module("embed", parts.embed);
  std::vector<int64_t> origin(parts.blocks.size());
  for (size_t i = 0; i < origin.size(); ++i) origin[i] = static_cast<int64_t>(i);
  set_blocks(std::move(parts.blocks), std::move(origin));
  head_ = register_module("head", parts.head);
  if (!config_.tie_word_embeddings) {
    int64_t e = config_.arch == Arch::kOPT ? config_.word_embed_proj_dim : config_.hidden_size;
    lm_head_ = register_module("lm_head", nn::Linear(nn::LinearOptions(e, config_.vocab_size).with_bias(false)));
  }
}

void DecoderLMImpl::set_blocks(std::vector<std::shared_ptr<BlockBase>> blocks,
                               std::vector<int64_t> origin) {
  OT_REQUIRE(blocks.size() == origin.size(), "set_blocks: ", blocks.size(), " blocks but ",
             origin.size(), " origin indices");
  torch::nn::ModuleList list;
  for (auto& b : blocks) list->push_back(b);
  if (block_list_) {
    block_list_ = replace_module("blocks", list);
  } else {
    block_list_ = register_module("blocks", list);
  }
  blocks_ = std::move(blocks);
  block_origin_ = std::move(origin);
  config_.num_layers = static_cast<int64_t>(blocks_.size());
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
  if (config_.max_positions > 0 && config_.arch != Arch::kLlama) {
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
  } else if (padded && (config_.arch == Arch::kGPT2 || config_.arch == Arch::kLlama)) {
    ctx.bias = additive_bias_summed(key_mask, B, T, past, dtype);
  } else if (need_mask) {
    // OPT clamps its scores at the lowest value, so masked keys all end up equal.
    ctx.bias = additive_bias(causal_padding_allowed(padded ? key_mask : at::Tensor(), B, T, past, dev), dtype);
  }
  if (config_.arch == Arch::kLlama)
    rope_tables(ctx.position_ids, config_.head_dim, config_.rope_theta, dtype, ctx.rope_cos, ctx.rope_sin);
  return ctx;
}

at::Tensor DecoderLMImpl::embed(const at::Tensor& ids, const AttentionContext& ctx) {
  return embed_->forward(ids, ctx);
}

at::Tensor DecoderLMImpl::run_block(int64_t i, const at::Tensor& h, const AttentionContext& ctx,
                                    LayerKV* cache) {
  std::shared_ptr<BlockBase> block = blocks_.at(static_cast<size_t>(i));
  if (checkpoint_blocks_ && cache == nullptr && is_training() && torch::GradMode::is_enabled())
    return checkpointed([block, ctx](const at::Tensor& x) { return block->forward(x, ctx, nullptr); }, h);
  return block->forward(h, ctx, cache);
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

std::string DecoderLMImpl::hf_name(const std::string& internal) const {
  auto starts = [&](const char* p) { return internal.rfind(p, 0) == 0; };
  if (starts("embed.")) return base_prefix_ + internal.substr(6);
  if (starts("head.")) return base_prefix_ + internal.substr(5);
  if (starts("lm_head.")) return internal;
  if (starts("blocks.")) return base_prefix_ + block_prefix_ + internal.substr(7);
  return internal;
}

StateDict DecoderLMImpl::hf_state_dict() const {
  StateDict sd;
  for (const auto& p : named_parameters(/*recurse=*/true)) sd[hf_name(p.key())] = p.value();
  return sd;
}

namespace {
// Keys some checkpoints carry that are derived, not learned: safe to ignore.
bool ignorable_key(const std::string& k) {
  auto ends = [&](const std::string& s) { return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0; };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("rotary_emb.inv_freq");
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}
}  // namespace

void DecoderLMImpl::load_hf_state_dict(const StateDict& sd, const std::string& source, bool strict) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  std::vector<std::string> missing;
  // Base-model checkpoints (GPT2Model, OPTModel, ...) omit the first prefix component.
  const std::string base_head = base_prefix_.substr(0, base_prefix_.find('.') + 1);
  for (auto& p : named_parameters(/*recurse=*/true)) {
    std::string key = hf_name(p.key());
    auto it = sd.find(key);
    if (it == sd.end() && key.rfind(base_head, 0) == 0) it = sd.find(key.substr(base_head.size()));
    if (it == sd.end()) {
      missing.push_back(key);
      continue;
    }
    used.insert(it->first);
    const at::Tensor& src = it->second;
    at::Tensor param = p.value();
    OT_REQUIRE(src.sizes() == param.sizes(), source, ": tensor '", it->first, "' has shape ",
               shape_str(src.sizes()), " but config.json implies ", shape_str(param.sizes()));
    OT_REQUIRE(src.is_floating_point(), source, ": tensor '", it->first,
               "' is not floating point (", src.scalar_type(), ")");
    if (src.scalar_type() == param.scalar_type() && src.device() == param.device()) {
      param.set_data(src);  // zero-copy: memory-mapped checkpoints stay file-backed
    } else {
      param.set_data(src.to(param.device(), param.scalar_type()));
    }
  }
  if (!missing.empty()) {
    std::ostringstream os;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) os << (i ? ", " : "") << "'" << missing[i] << "'";
    if (missing.size() > 5) os << " and " << missing.size() - 5 << " more";
    fail(source, ": ", missing.size(), " weight(s) the config requires are missing: ", os.str());
  }
  if (strict) {
    std::vector<std::string> extra;
    for (const auto& kv : sd) {
      if (used.count(kv.first) || ignorable_key(kv.first)) continue;
      if (kv.first == "lm_head.weight" && config_.tie_word_embeddings) continue;  // tied copy
      extra.push_back(kv.first);
    }
    if (!extra.empty()) {
      std::ostringstream os;
      for (size_t i = 0; i < extra.size() && i < 5; ++i) os << (i ? ", " : "") << "'" << extra[i] << "'";
      if (extra.size() > 5) os << " and " << extra.size() - 5 << " more";
      fail(source, ": ", extra.size(), " tensor(s) do not belong to a ", arch_name(config_.arch),
           " model with ", config_.num_layers, " layers: ", os.str());
    }
  }
}

void DecoderLMImpl::init_weights(double std) {
  torch::NoGradGuard no_grad;
  const double proj_std = std / std::sqrt(2.0 * double(config_.num_layers));
  for (auto& item : named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    const std::string& name = item.key();
    if (auto* l = dynamic_cast<nn::LinearImpl*>(m)) {
      l->weight.normal_(0.0, std);
      if (l->bias.defined()) l->bias.zero_();
    } else if (auto* c = dynamic_cast<nn::Conv1DImpl*>(m)) {
      // GPT-2 scales the residual projections by 1/sqrt(2 * n_layer)
      bool residual = name.size() > 6 && name.compare(name.size() - 6, 6, "c_proj") == 0;
      c->weight.normal_(0.0, residual ? proj_std : std);
      c->bias.zero_();
    } else if (auto* e = dynamic_cast<nn::EmbeddingImpl*>(m)) {
      e->weight.normal_(0.0, std);
      if (e->padding_idx >= 0 && e->padding_idx < e->num_embeddings) e->weight[e->padding_idx].zero_();
    } else if (auto* n = dynamic_cast<nn::LayerNormImpl*>(m)) {
      if (n->weight.defined()) n->weight.fill_(1.0);
      if (n->bias.defined()) n->bias.zero_();
    } else if (auto* r = dynamic_cast<nn::RMSNormImpl*>(m)) {
      r->weight.fill_(1.0);
    }
  }
}

int64_t DecoderLMImpl::num_parameters(ModelPart part) const {
  int64_t n = 0;
  for (const auto& p : named_parameters(true)) {
    const std::string& k = p.key();
    bool in = part == ModelPart::kAll ||
              (part == ModelPart::kEmbeddings && k.rfind("embed.", 0) == 0) ||
              (part == ModelPart::kBlocks && k.rfind("blocks.", 0) == 0) ||
              (part == ModelPart::kHead && (k.rfind("head.", 0) == 0 || k.rfind("lm_head.", 0) == 0));
    if (in) n += p.value().numel();
  }
  return n;
}

at::ScalarType DecoderLMImpl::dtype() const { return embed_->token_weight().scalar_type(); }
c10::Device DecoderLMImpl::device() const { return embed_->token_weight().device(); }

void check_token_ids(const at::Tensor& ids, int64_t vocab_size, const std::string& source) {
  if (ids.numel() == 0) return;
  int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  OT_REQUIRE(lo >= 0 && hi < vocab_size, source, ": token id ", (lo < 0 ? lo : hi),
             " is outside the vocabulary [0, ", vocab_size, ")");
}

}  // namespace ot
