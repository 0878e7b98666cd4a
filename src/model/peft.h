// model/peft.h: what trains during fine-tuning. The trainable part (the adapter blocks,
// every block, or the emulator blocks; optionally the head) and, inside it, an optional
// parameter-efficient method as in the paper's Table 5:
//   lora     rank r, alpha, dropout on the attention and FFN projections (merged on export)
//   bitfit   only the 1-D parameters (biases, norm weights)
//   adapter  bottleneck adapters (size, ReLU, dropout) after the attention output and the
//            second FFN projection
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/decoder_lm.h"

namespace ot {

struct PeftOptions {
  std::string method = "none";  // none | lora | bitfit | adapter
  int64_t lora_rank = 4;
  double lora_alpha = 32.0;
  double lora_dropout = 0.1;
  std::vector<std::string> lora_targets;     // empty: the family's default projections
  int64_t adapter_size = 64;
  double adapter_dropout = 0.1;
  std::vector<std::string> adapter_targets;  // empty: attention output + second FFN projection
};

// The family defaults named in the paper (OPT: q/k/v/out/fc1/fc2; GPT-2: c_attn, c_proj, c_fc).
std::vector<std::string> default_lora_targets(Arch arch);
std::vector<std::string> default_adapter_targets(Arch arch);

// Adds the PEFT modules to the blocks at `positions` (indices into model->blocks).
void apply_peft(BlockModelImpl& model, const std::vector<int64_t>& positions, const PeftOptions& o);
inline void apply_peft(DecoderLM& model, const std::vector<int64_t>& positions, const PeftOptions& o) {
  apply_peft(*model, positions, o);
}

// Freezes everything, then enables gradients for the blocks at `positions` (all their
// parameters, or only the PEFT ones when a method is set) and, with `train_head`, the
// head part (final norm and output layer). Returns the number of trainable parameters.
int64_t set_trainable(BlockModelImpl& model, const std::vector<int64_t>& positions, bool train_head,
                      const PeftOptions& o);
inline int64_t set_trainable(DecoderLM& model, const std::vector<int64_t>& positions, bool train_head,
                             const PeftOptions& o) {
  return set_trainable(*model, positions, train_head, o);
}

// True for a parameter a PEFT method added (LoRA factors, bottleneck projections), by the
// last component of its name ("blocks.3.fc1.lora_A").
bool is_peft_param(const std::string& name);

// Merges LoRA into the base weights (bottleneck adapters stay, they cannot be merged).
void merge_peft(BlockModelImpl& model);
inline void merge_peft(DecoderLM& model) { merge_peft(*model); }

nlohmann::json peft_to_json(const PeftOptions& o);
// Reads peft_to_json's output back; `source` names the file in errors.
PeftOptions peft_from_json(const nlohmann::json& j, const std::string& source);

// Config key under which a saved model records bottleneck adapters it carries (they cannot
// be merged into the weights): {"method": "adapter", "size", "dropout", "targets",
// "blocks": [block positions]}. load_model re-creates them before loading the weights.
inline constexpr const char* kPeftConfigKey = "offsite_peft";

}  // namespace ot
