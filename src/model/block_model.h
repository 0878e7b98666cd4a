// model/block_model.h: what every model offsite-tuning operates on has in common, whatever
// its input: an ordered list of blocks between an embedding part and a head part, with the
// parameters under their Hugging Face checkpoint names. Decoder LMs (model/decoder_lm.h) embed
// token ids and end in logits over a vocabulary; vision encoders (model/vision_encoder.h)
// embed pixels and end in a pooled token, class logits or an image embedding. The block list
// is explicit so that offsite-tuning can drop, replace and re-insert blocks; `block_origin`
// records each block's index in the original full model.
//
// Internal parameter names are "embed.*", "blocks.<i>.*", "head.*" and top-level output layers
// (lm_head, classifier, visual_projection); hf_name maps them to the checkpoint's names.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/attention.h"
#include "model/block.h"
#include "model/config.h"

namespace ot {

// Parameter groups for counting and for choosing what trains.
enum class ModelPart { kEmbeddings, kBlocks, kHead, kAll };

class BlockModelImpl : public torch::nn::Module {
 public:
  const ModelConfig& config() const { return config_; }
  // Sets a top-level key of the config.json this model writes (e.g. the offsite section).
  void set_config_entry(const std::string& key, const nlohmann::json& value) { config_.raw[key] = value; }
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  BlockBase& block(int64_t i) { return *blocks_.at(static_cast<size_t>(i)); }
  std::shared_ptr<BlockBase> block_ptr(int64_t i) const { return blocks_.at(static_cast<size_t>(i)); }
  // The original-model index of each block (identity for a full model).
  const std::vector<int64_t>& block_origin() const { return block_origin_; }

  // Replaces the block list (offsite: emulators, plug-in). `origin` gives each new block's
  // index in the original model; config().num_layers follows the new length.
  void set_blocks(std::vector<std::shared_ptr<BlockBase>> blocks, std::vector<int64_t> origin);

  // Block i on h (B, T, C) -> (B, T, C), checkpointed when activation checkpointing is on.
  at::Tensor run_block(int64_t i, const at::Tensor& h, const AttentionContext& ctx, LayerKV* cache = nullptr);

  // HF key -> parameter (shares storage with the model). Tied heads are omitted, as HF does.
  StateDict hf_state_dict() const;
  // Assigns every parameter from `sd` (HF names; keys of a base model without the first
  // prefix component, e.g. "model." or "vit.", are accepted too), converting to each
  // parameter's dtype/device. Throws ot::Error naming `source` on a missing key, a shape
  // mismatch, or (when strict) an unexpected key.
  void load_hf_state_dict(const StateDict& sd, const std::string& source, bool strict = true);
  // HF name of an internal parameter name ("blocks.3.fc1.weight" -> "model.decoder.layers.3.fc1.weight").
  std::string hf_name(const std::string& internal) const;

  // HF-style initialisation for training from scratch: normal(0, std) weights, zero
  // biases, unit norms, zero padding row, GPT-2's scaled residual projections; parts with
  // their own scheme (vision embeddings) are drawn by init_extra.
  void init_weights(double std);

  int64_t num_parameters(ModelPart part) const;
  // Whether an internal parameter name belongs to the head part: the final norm and the
  // output layer (lm_head, classifier, visual_projection), i.e. neither embed.* nor blocks.*.
  static bool is_head_param(const std::string& internal);
  // Whether it is the output layer itself (lm_head, classifier, visual_projection): what
  // TrainerOptions::head_lr_scale speeds up.
  static bool is_output_layer_param(const std::string& internal);
  at::ScalarType dtype() const;
  c10::Device device() const;

  // Activation checkpointing per block (model/activation_checkpoint.h) for training passes:
  // applies while the model is in training mode and grad mode is on, without a KV cache.
  void set_activation_checkpointing(bool on) { checkpoint_blocks_ = on; }
  bool activation_checkpointing() const { return checkpoint_blocks_; }

 protected:
  BlockModelImpl(const ModelConfig& config, std::string base_prefix, std::string block_prefix);
  // Registers the parts as "embed", "blocks" (each block its own original index) and "head",
  // in that order (the parameter order of every model).
  void adopt_parts(std::shared_ptr<torch::nn::Module> embed, std::vector<std::shared_ptr<BlockBase>> blocks,
                   std::shared_ptr<torch::nn::Module> head);
  // A checkpoint key that need not match a parameter: derived buffers, a tied head's copy,
  // the other tower of a two-tower checkpoint.
  virtual bool ignorable_key(const std::string& key) const;
  // Parameters init_weights' generic rules do not cover.
  virtual void init_extra(double std) { (void)std; }

  ModelConfig config_;
  std::vector<std::shared_ptr<BlockBase>> blocks_;
  torch::nn::ModuleList block_list_{nullptr};
  std::vector<int64_t> block_origin_;
  std::string base_prefix_, block_prefix_;
  bool checkpoint_blocks_ = false;
};

}  // namespace ot
