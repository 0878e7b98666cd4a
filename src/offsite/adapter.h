// offsite/adapter.h: what the data owner sends back and the model owner plugs in.
// adapter.safetensors holds the trained tensors under HF names of the ORIGINAL model
// ("model.decoder.layers.23.fc1.weight", block index = original index), with any PEFT
// already merged; adapter_config.json records the model it belongs to (type, depth,
// fingerprint) so plug-in refuses an adapter made for another model.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/decoder_lm.h"

namespace ot {

struct Adapter {
  StateDict tensors;      // original-model HF names -> tensor
  nlohmann::json config;  // adapter_config.json
};

// Internal parameter name of `model` ("blocks.3.fc1.weight") -> HF name in the ORIGINAL
// model, using the model's block_origin for block parameters.
std::string original_hf_name(DecoderLM& model, const std::string& internal);

// Collects the parameters of `model` whose internal names satisfy `keep` (default: the
// blocks whose original index is in `blocks`) under original HF names.
Adapter extract_adapter(DecoderLM& model, const std::vector<int64_t>& blocks, bool include_head,
                        const std::string& fingerprint, int64_t num_original_layers,
                        const nlohmann::json& extra = nlohmann::json::object());

void save_adapter(const Adapter& a, const std::string& dir);
Adapter load_adapter(const std::string& dir);

// Writes the adapter's tensors into `full` (same architecture, `num_original_layers`
// blocks, same fingerprint). Every tensor must name an existing parameter of the same
// shape; errors name the adapter directory and the tensor.
void plug_in(DecoderLM& full, const Adapter& a, const std::string& source);

// Loads an adapter into a bundle (for evaluating the fine-tuned emulator or resuming).
void load_adapter_into(DecoderLM& bundle, const Adapter& a, const std::string& source);

}  // namespace ot
