// model/decoder_lm.h: a decoder-only language model as embed -> ordered blocks -> head.
// Built from a ModelConfig for any supported family; parameters are exposed under their
// Hugging Face checkpoint names (hf_state_dict / load_hf_state_dict), so checkpoints load
// and save without conversion. The block list is explicit so that offsite-tuning can
// drop, replace and re-insert blocks; `block_origin` records each block's index in the
// original full model.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/attention.h"
#include "model/block.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/lm_loss.h"

namespace ot {

struct ForwardOutput {
  at::Tensor logits;                      // (B, T, V) in the compute dtype
  at::Tensor embeddings;                  // (B, T, C) input to block 0 (if requested)
  std::vector<at::Tensor> block_outputs;  // raw output of each block (if requested)
};

struct ForwardOptions {
  bool hidden_states = false;  // fill embeddings and block_outputs
  KVCache* cache = nullptr;    // generation: read past keys/values, append this step's
};

// Parameter groups for counting and for choosing what trains.
enum class ModelPart { kEmbeddings, kBlocks, kHead, kAll };

class DecoderLMImpl : public torch::nn::Module {
 public:
  explicit DecoderLMImpl(const ModelConfig& config);

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

  // ids (B, T) int64; key_mask (B, past + T) with 1 for real tokens (undefined: all real);
  // position_ids (B, T) or undefined (family default: OPT from the mask, others arange).
  AttentionContext make_context(const at::Tensor& ids, const at::Tensor& key_mask,
                                const at::Tensor& position_ids, int64_t past_length) const;

  at::Tensor embed(const at::Tensor& ids, const AttentionContext& ctx);       // (B, T, C)
  at::Tensor run_block(int64_t i, const at::Tensor& h, const AttentionContext& ctx,
                       LayerKV* cache = nullptr);                             // (B, T, C)
  at::Tensor head(const at::Tensor& h);                                       // (B, T, V)

  ForwardOutput forward(const at::Tensor& ids, const at::Tensor& key_mask = {},
                        const at::Tensor& position_ids = {}, const ForwardOptions& opts = {});

  // HF key -> parameter (shares storage with the model). Tied heads are omitted, as HF does.
  StateDict hf_state_dict() const;
  // Assigns every parameter from `sd` (HF names; keys of a base model without the
  // "model."/"transformer." prefix are accepted too), converting to each parameter's
  // dtype/device. Throws ot::Error naming `source` on a missing key, a shape mismatch, or
  // (when strict) an unexpected key.
  void load_hf_state_dict(const StateDict& sd, const std::string& source, bool strict = true);
  // HF name of an internal parameter name ("blocks.3.fc1.weight" -> "model.decoder.layers.3.fc1.weight").
  std::string hf_name(const std::string& internal) const;

  // HF-style initialisation for training from scratch: normal(0, std) weights, zero
  // biases, unit norms, zero padding row, GPT-2's scaled residual projections.
  void init_weights(double std);

  int64_t num_parameters(ModelPart part) const;
  at::ScalarType dtype() const;
  c10::Device device() const;

  // Activation checkpointing per block (model/activation_checkpoint.h) for training passes:
  // applies while the model is in training mode and grad mode is on, without a KV cache.
  void set_activation_checkpointing(bool on) { checkpoint_blocks_ = on; }
  bool activation_checkpointing() const { return checkpoint_blocks_; }

 private:
  ModelConfig config_;
  std::shared_ptr<EmbedderBase> embed_;
  std::vector<std::shared_ptr<BlockBase>> blocks_;
  torch::nn::ModuleList block_list_{nullptr};
  std::shared_ptr<HeadBase> head_;
  nn::Linear lm_head_{nullptr};  // only when untied
  std::vector<int64_t> block_origin_;
  std::string base_prefix_, block_prefix_;
  bool checkpoint_blocks_ = false;
};
TORCH_MODULE(DecoderLM);

// Throws ot::Error (naming `source`) if any id is outside [0, vocab_size).
void check_token_ids(const at::Tensor& ids, int64_t vocab_size, const std::string& source);

}  // namespace ot
