// model/block_model.cpp: see block_model.h.
#include "model/block_model.h"

#include <torch/torch.h>

#include <set>
#include <sstream>

#include "model/activation_checkpoint.h"
#include "model/layers.h"
#include "util/error.h"

namespace ot {

BlockModelImpl::BlockModelImpl(const ModelConfig& config, std::string base_prefix, std::string block_prefix)
    : config_(config), base_prefix_(std::move(base_prefix)), block_prefix_(std::move(block_prefix)) {}

void BlockModelImpl::adopt_parts(std::shared_ptr<torch::nn::Module> embed,
                                 std::vector<std::shared_ptr<BlockBase>> blocks,
                                 std::shared_ptr<torch::nn::Module> head) {
  register_module("embed", std::move(embed));
  std::vector<int64_t> origin(blocks.size());
  for (size_t i = 0; i < origin.size(); ++i) origin[i] = static_cast<int64_t>(i);
  set_blocks(std::move(blocks), std::move(origin));
  register_module("head", std::move(head));
}

void BlockModelImpl::set_blocks(std::vector<std::shared_ptr<BlockBase>> blocks,
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


at::Tensor BlockModelImpl::run_block(int64_t i, const at::Tensor& h, const AttentionContext& ctx,
                                    LayerKV* cache) {
  std::shared_ptr<BlockBase> block = blocks_.at(static_cast<size_t>(i));
  if (checkpoint_blocks_ && cache == nullptr && is_training() && torch::GradMode::is_enabled())
    return checkpointed([block, ctx](const at::Tensor& x) { return block->forward(x, ctx, nullptr); }, h);
  return block->forward(h, ctx, cache);
}

std::string BlockModelImpl::hf_name(const std::string& internal) const {
  auto starts = [&](const char* p) { return internal.rfind(p, 0) == 0; };
  if (starts("embed.")) return base_prefix_ + internal.substr(6);
  if (starts("head.")) return base_prefix_ + internal.substr(5);
  if (starts("blocks.")) return base_prefix_ + block_prefix_ + internal.substr(7);
  return internal;  // top-level output layers keep their names (lm_head, classifier, ...)
}

StateDict BlockModelImpl::hf_state_dict() const {
  StateDict sd;
  for (const auto& p : named_parameters(/*recurse=*/true)) sd[hf_name(p.key())] = p.value();
  return sd;
}

namespace {
std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}
}  // namespace

// Keys some checkpoints carry that are derived, not learned: safe to ignore.
bool BlockModelImpl::ignorable_key(const std::string& k) const {
  auto ends = [&](const std::string& s) { return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0; };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("rotary_emb.inv_freq");
}

void BlockModelImpl::load_hf_state_dict(const StateDict& sd, const std::string& source, bool strict) {
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

void BlockModelImpl::init_weights(double std) {
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
      r->weight.fill_(r->plus_one ? 0.0 : 1.0);  // Gemma's (1 + w) starts at 1 too
    }
  }
  init_extra(std);
}

int64_t BlockModelImpl::num_parameters(ModelPart part) const {
  int64_t n = 0;
  for (const auto& p : named_parameters(true)) {
    const std::string& k = p.key();
    bool in = part == ModelPart::kAll ||
              (part == ModelPart::kEmbeddings && k.rfind("embed.", 0) == 0) ||
              (part == ModelPart::kBlocks && k.rfind("blocks.", 0) == 0) ||
              (part == ModelPart::kHead && is_head_param(k));
    if (in) n += p.value().numel();
  }
  return n;
}

bool BlockModelImpl::is_head_param(const std::string& k) {
  return k.rfind("embed.", 0) != 0 && k.rfind("blocks.", 0) != 0;
}

bool BlockModelImpl::is_output_layer_param(const std::string& k) {
  for (const char* layer : {"lm_head.", "classifier.", "visual_projection."})
    if (k.rfind(layer, 0) == 0) return true;
  return false;
}

at::ScalarType BlockModelImpl::dtype() const {
  for (const auto& p : parameters(/*recurse=*/true)) return p.scalar_type();
  return at::kFloat;
}

c10::Device BlockModelImpl::device() const {
  for (const auto& p : parameters(/*recurse=*/true)) return p.device();
  return c10::Device(c10::kCPU);
}


}  // namespace ot
