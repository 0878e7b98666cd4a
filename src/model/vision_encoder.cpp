// model/vision_encoder.cpp: see vision_encoder.h.
#include "model/vision_encoder.h"

#include <torch/torch.h>

#include "util/error.h"

namespace ot {

VisionParts make_vision_parts(const ModelConfig& c) {
  switch (c.arch) {
    case Arch::kViT: return families::make_vit(c);
    case Arch::kCLIPVision: return families::make_clip_vision(c);
    default: break;
  }
  fail("model_type '", arch_name(c.arch), "' is a decoder language model, not a vision encoder");
}

VisionEncoderImpl::VisionEncoderImpl(const ModelConfig& config) : VisionEncoderImpl(config, make_vision_parts(config)) {}

VisionEncoderImpl::VisionEncoderImpl(const ModelConfig& config, VisionParts parts)
    : BlockModelImpl(config, parts.base_prefix, parts.block_prefix) {
  embed_ = parts.embed;
  head_ = parts.head;
  adopt_parts(parts.embed, std::move(parts.blocks), parts.head);
  if (config_.num_labels > 0)
    classifier_ = register_module("classifier", nn::Linear(nn::LinearOptions(config_.hidden_size, config_.num_labels)));
  if (config_.projection_dim > 0)
    visual_projection_ = register_module(
        "visual_projection", nn::Linear(nn::LinearOptions(config_.hidden_size, config_.projection_dim).with_bias(false)));
}

void VisionEncoderImpl::check_pixels(const at::Tensor& pixels, bool interpolate, const std::string& source) const {
  OT_REQUIRE(pixels.dim() == 4, source, ": pixel_values: expected shape (batch, ", config_.num_channels,
             ", height, width), got ", pixels.sizes());
  OT_REQUIRE(pixels.is_floating_point(), source, ": pixel_values: expected floating-point values, got ",
             pixels.scalar_type());
  OT_REQUIRE(pixels.size(0) > 0, source, ": pixel_values: the batch is empty");
  OT_REQUIRE(pixels.size(1) == config_.num_channels, source, ": pixel_values: ", pixels.size(1),
             " channels, but the model takes ", config_.num_channels, " (num_channels)");
  const int64_t H = pixels.size(2), W = pixels.size(3), P = config_.patch_size;
  if (interpolate) {
    OT_REQUIRE(H >= P && W >= P, source, ": pixel_values: a ", H, " x ", W,
               " image is smaller than one patch (patch_size ", P, ")");
  } else {
    OT_REQUIRE(H == config_.image_size && W == config_.image_size, source, ": pixel_values: ", H, " x ", W,
               " images, but the model was trained on ", config_.image_size, " x ", config_.image_size,
               " (resize them, or interpolate the position embeddings)");
  }
}

at::Tensor VisionEncoderImpl::embed(const at::Tensor& pixels, bool interpolate) {
  return embed_->forward(pixels.to(dtype()), interpolate);
}

VisionOutput VisionEncoderImpl::head(const at::Tensor& h) {
  VisionOutput out;
  out.last_hidden_state = head_->sequence(h);
  out.pooler_output = head_->pooled(h);
  // ViTForImageClassification classifies the normalised class token, not a pooler output;
  // CLIPForImageClassification the mean of the patch tokens (class token left out).
  if (classifier_)
    out.logits = classifier_(config_.arch == Arch::kViT ? out.last_hidden_state.select(1, 0)
                                                        : out.last_hidden_state.slice(1, 1).mean(1));
  if (visual_projection_) out.image_embeds = visual_projection_(out.pooler_output);
  return out;
}

VisionOutput VisionEncoderImpl::forward(const at::Tensor& pixels, const VisionForwardOptions& opts) {
  check_pixels(pixels, opts.interpolate_positions, "forward");
  const AttentionContext ctx = make_context();
  at::Tensor h = embed(pixels, opts.interpolate_positions);
  at::Tensor first = h;
  std::vector<at::Tensor> outputs;
  for (int64_t i = 0; i < num_blocks(); ++i) {
    h = run_block(i, h, ctx);
    if (opts.hidden_states) outputs.push_back(h);
  }
  VisionOutput out = head(h);
  if (opts.hidden_states) {
    out.embeddings = first;
    out.block_outputs = std::move(outputs);
  }
  return out;
}

void VisionEncoderImpl::set_classifier(const std::vector<std::string>& class_names, double std) {
  OT_REQUIRE(!class_names.empty(), "a classifier needs at least one class");
  const auto k = static_cast<int64_t>(class_names.size());
  nn::Linear fresh(nn::LinearOptions(config_.hidden_size, k));
  {
    torch::NoGradGuard no_grad;
    fresh->weight.normal_(0.0, std);
    fresh->bias.zero_();
  }
  fresh->to(device(), dtype());
  classifier_ = classifier_ ? replace_module("classifier", fresh) : register_module("classifier", fresh);
  config_.num_labels = k;
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int64_t i = 0; i < k; ++i) {
    id2label[std::to_string(i)] = class_names[static_cast<size_t>(i)];
    label2id[class_names[static_cast<size_t>(i)]] = i;
  }
  config_.raw["id2label"] = id2label;
  config_.raw["label2id"] = label2id;
  config_.raw["architectures"] = {config_.arch == Arch::kViT ? "ViTForImageClassification" : "CLIPForImageClassification"};
  if (config_.arch == Arch::kCLIPVision && visual_projection_) {
    // CLIPForImageClassification has no projection.
    unregister_module("visual_projection");
    visual_projection_ = nullptr;
    config_.projection_dim = 0;
    config_.raw.erase("projection_dim");
  }
}

at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& labels) {
  return torch::nn::functional::cross_entropy(logits.to(torch::kFloat), labels.to(logits.device(), torch::kLong));
}

bool VisionEncoderImpl::ignorable_key(const std::string& key) const {
  auto ends = [&](const char* s) {
    const std::string t(s);
    return key.size() >= t.size() && key.compare(key.size() - t.size(), t.size(), t) == 0;
  };
  if (ends("embeddings.position_ids")) return true;  // a derived buffer older checkpoints carry
  if (config_.clip_two_towers)                         // CLIPModel: the text tower is not ours
    return key.rfind("text_model.", 0) == 0 || key.rfind("text_projection.", 0) == 0 || key == "logit_scale";
  return BlockModelImpl::ignorable_key(key);
}

// The parameters the generic rules leave out: ViT's class token and positions, CLIP's class
// embedding (HF draws them normally; the scale of the model's init is kept).
void VisionEncoderImpl::init_extra(double std) {
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters(/*recurse=*/true)) {
    const std::string& k = p.key();
    if (k.find("cls_token") != std::string::npos || k.find("position_embeddings") != std::string::npos ||
        k.find("class_embedding") != std::string::npos)
      p.value().normal_(0.0, std);
    else if (k.find("patch_embedding") != std::string::npos)  // ViT's patch_embeddings.projection too
      p.value().dim() > 1 ? p.value().normal_(0.0, std) : p.value().zero_();
  }
}

}  // namespace ot
