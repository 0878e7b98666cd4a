// model/vision_encoder.h: an image encoder as embed -> ordered blocks -> head
// (model/block_model.h), for ViT and CLIP's vision tower: pixel values in, the sequence, the
// pooled class token and, where the checkpoint has them, class logits (ViT's classifier) or
// an image embedding (CLIP's visual_projection) out. Parameters under their Hugging Face
// checkpoint names; offsite-tuning works on its blocks as on a decoder's.
// Shapes: B images, channels x H x W pixels, N patches, T = 1 + N tokens, C hidden size.
#pragma once

#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

#include "model/block.h"
#include "model/block_model.h"
#include "model/config.h"
#include "model/layers.h"

namespace ot {

struct VisionOutput {
  at::Tensor last_hidden_state;           // (B, T, C) as HF returns it (ViT: after the final LayerNorm)
  at::Tensor pooler_output;               // (B, C) ViTModel's pooler / CLIP's post_layernorm(class token)
  at::Tensor logits;                      // (B, num_labels) when the model has a classifier
  at::Tensor image_embeds;                // (B, projection_dim) when the model has a projection
  at::Tensor embeddings;                  // (B, T, C) input to block 0 (if requested)
  std::vector<at::Tensor> block_outputs;  // raw output of each block (if requested)
};

struct VisionForwardOptions {
  bool hidden_states = false;          // fill embeddings and block_outputs
  bool interpolate_positions = false;  // accept another image size (HF's interpolate_pos_encoding)
};

class VisionEncoderImpl : public BlockModelImpl {
 public:
  explicit VisionEncoderImpl(const ModelConfig& config);

  // Checks pixels (B, channels, H, W) against the config: ot::Error naming `source` if not.
  void check_pixels(const at::Tensor& pixels, bool interpolate_positions, const std::string& source) const;
  // Encoders attend both ways: the context carries nothing.
  AttentionContext make_context() const { return {}; }
  at::Tensor embed(const at::Tensor& pixels, bool interpolate_positions = false);  // (B, T, C)
  // From the last block's output: sequence, pooled token and the output layer's result.
  VisionOutput head(const at::Tensor& h);
  VisionOutput forward(const at::Tensor& pixels, const VisionForwardOptions& opts = {});

  bool has_classifier() const { return static_cast<bool>(classifier_); }
  // A new classifier for `class_names` (HF's ignore_mismatched_sizes, for a new dataset):
  // weights drawn from N(0, std^2), biases zero, config.json's id2label / label2id and
  // architectures (ViTForImageClassification, CLIPForImageClassification) to match. A CLIP
  // tower's projection goes, as CLIPForImageClassification has none.
  void set_classifier(const std::vector<std::string>& class_names, double std);
  bool has_projection() const { return static_cast<bool>(visual_projection_); }

 protected:
  bool ignorable_key(const std::string& key) const override;
  void init_extra(double std) override;

 private:
  VisionEncoderImpl(const ModelConfig& config, VisionParts parts);

  std::shared_ptr<PatchEmbedderBase> embed_;
  std::shared_ptr<VisionHeadBase> head_;
  nn::Linear classifier_{nullptr};         // ViTForImageClassification
  nn::Linear visual_projection_{nullptr};  // CLIPVisionModelWithProjection / CLIPModel
};
TORCH_MODULE(VisionEncoder);

// The classification loss of ViTForImageClassification (single-label): mean cross entropy of
// logits (B, K) against class ids (B), computed in fp32.
at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace ot
