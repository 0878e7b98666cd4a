// model/decoder_lm.h: a decoder-only language model as embed -> ordered blocks -> head
// (model/block_model.h), built from a ModelConfig for any supported family: token ids in,
// logits over the vocabulary out; parameters under their Hugging Face checkpoint names, so
// checkpoints load and save without conversion.
#pragma once

#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/block.h"
#include "model/block_model.h"
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

class DecoderLMImpl : public BlockModelImpl {
 public:
  explicit DecoderLMImpl(const ModelConfig& config);

  // ids (B, T) int64; key_mask (B, past + T) with 1 for real tokens (undefined: all real);
  // position_ids (B, T) or undefined (family default: OPT from the mask, others arange).
  AttentionContext make_context(const at::Tensor& ids, const at::Tensor& key_mask,
                                const at::Tensor& position_ids, int64_t past_length) const;

  at::Tensor embed(const at::Tensor& ids, const AttentionContext& ctx);       // (B, T, C)
  at::Tensor head(const at::Tensor& h);                                       // (B, T, V)

  ForwardOutput forward(const at::Tensor& ids, const at::Tensor& key_mask = {},
                        const at::Tensor& position_ids = {}, const ForwardOptions& opts = {});

 protected:
  bool ignorable_key(const std::string& key) const override;

 private:
  DecoderLMImpl(const ModelConfig& config, FamilyParts parts);

  std::shared_ptr<EmbedderBase> embed_;
  std::shared_ptr<HeadBase> head_;
  nn::Linear lm_head_{nullptr};  // only when untied
};
TORCH_MODULE(DecoderLM);

// Throws ot::Error (naming `source`) if any id is outside [0, vocab_size).
void check_token_ids(const at::Tensor& ids, int64_t vocab_size, const std::string& source);

}  // namespace ot
