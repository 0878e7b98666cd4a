// offsite/peft_lora.h: LoRA adapters in PEFT's layout, both ways. Written: the LoRA factors
// a fine-tune trained on the adapter blocks, under the ORIGINAL model's module names, as
// `PeftModel.from_pretrained` on the original HF model reads them (adapter_config.json with
// PEFT's LoraConfig keys, adapter_model.safetensors with "base_model.model.<module>.lora_A
// .weight" (r, in) and ".lora_B.weight" (out, r)). Read: a PEFT LoRA directory checked
// against a model (and, for the model owner's plug-in, against what the bundle issued) and
// merged, W += scaling * B A (transposed for GPT-2's Conv1D, whose weight is (in, out)).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/block_model.h"
#include "model/peft.h"
#include "offsite/adapter.h"
#include "offsite/bundle_config.h"

namespace ot {

// Where `ot finetune` puts the PEFT export of a LoRA fine-tune: this subdirectory of the
// adapter directory.
inline constexpr const char* kPeftExportDir = "peft";

struct PeftLora {
  nlohmann::json config;  // adapter_config.json, PEFT's LoraConfig
  StateDict tensors;      // PEFT names -> LoRA factor
};

// The LoRA factors of the blocks at `positions` of `model` (LoRA not yet merged) under the
// original model's module names; `layers_to_transform` lists their original indices.
// `base_model` becomes base_model_name_or_path (empty: null). Every LoRA module of those
// blocks must be a dense Linear or Conv1D (PEFT wraps nothing else here).
PeftLora extract_peft_lora(BlockModelImpl& model, const std::vector<int64_t>& positions, const PeftOptions& o,
                           const std::string& base_model);

// Writes adapter_config.json and adapter_model.safetensors into the existing directory `dir`.
void save_peft_lora(const PeftLora& p, const std::string& dir);

// One module's change read from a PEFT LoRA directory, checked against the model.
struct PeftLoraDelta {
  std::string module;  // the model's internal module name ("blocks.3.self_attn.q_proj")
  std::string weight;  // HF name of the weight it changes ("model.decoder.layers.3.self_attn.q_proj.weight")
  std::string tensor;  // the lora_A tensor's name, for messages
  at::Tensor delta;    // float32, in the weight's layout: scaling * B A, transposed for Conv1D
};

// Reads the PEFT LoRA adapter in `dir` against `model`, whose block i is original block i:
// the config as parse_peft_lora_config accepts it; every tensor a lora_A / lora_B factor of
// a projection of the model, in pairs, of the module's input and output widths and rank r,
// floating point and finite; every such module matched by target_modules and within
// layers_to_transform; every target module a projection of the model. Errors name the file
// and the key or tensor.
std::vector<PeftLoraDelta> read_peft_lora(BlockModelImpl& model, const std::string& dir);

// read_peft_lora, then W += delta for each module (computed in float32, stored in W's dtype).
void merge_peft_lora(BlockModelImpl& model, const std::string& dir);

// The model owner's plug-in of a PEFT LoRA adapter in `dir` that the data owner returned:
// read against `full`, then every changed module must lie in an adapter block `issued` lists
// (refused by tensor name otherwise); the changed blocks, merged onto the full model's own
// weights, become an offsite adapter that goes through plug_in (dtypes, shapes, finite
// values, fingerprint). Returns that adapter.
Adapter plug_in_peft_lora(BlockModelImpl& full, const std::string& dir, const IssuedAdapter& issued);

}  // namespace ot
