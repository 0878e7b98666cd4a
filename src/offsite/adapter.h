// offsite/adapter.h: what the data owner sends back and the model owner plugs in.
// adapter.safetensors holds the trained tensors under HF names of the ORIGINAL model
// ("model.decoder.layers.23.fc1.weight", block index = original index), with any PEFT
// already merged; offsite_adapter.json (adapter_config.json in adapters written before it
// had a name of its own) is the data owner's claim of what it holds (model type, depth,
// fingerprint, blocks). A LoRA fine-tune also leaves PEFT's layout (offsite/peft_lora.h). Nothing of it is taken at its word: plug-in checks every
// tensor against what the owner's bundle issued (IssuedAdapter) and refuses the rest by name.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/block_model.h"
#include "offsite/bundle_config.h"
#include "offsite/emulator.h"

namespace ot {

struct Adapter {
  StateDict tensors;      // original-model HF names -> tensor
  nlohmann::json config;  // offsite_adapter.json
  std::string config_file = kAdapterConfigFile;  // the file the config came from, for messages
};

// Internal parameter name of `model` ("blocks.3.fc1.weight") -> HF name in the ORIGINAL
// model, using the model's block_origin for block parameters.
std::string original_hf_name(BlockModelImpl& model, const std::string& internal);

// Collects the parameters of `model` whose internal names satisfy `keep` (default: the
// blocks whose original index is in `blocks`) under original HF names.
Adapter extract_adapter(BlockModelImpl& model, const std::vector<int64_t>& blocks, bool include_head,
                        const std::string& fingerprint, int64_t num_original_layers,
                        const nlohmann::json& extra = nlohmann::json::object());

// Writes offsite_adapter.json and adapter.safetensors into `dir`, replacing it as a whole;
// `also` (when set) adds files to the directory before it appears.
void save_adapter(const Adapter& a, const std::string& dir,
                  const std::function<void(const std::string& tmp_dir)>& also = nullptr);
// Reads an adapter directory: offsite_adapter.json, or, in a directory written before that
// name, an adapter_config.json in the offsite format. A PEFT adapter_config.json alone is an
// error that points to `ot plugin --peft`.
Adapter load_adapter(const std::string& dir);

// What a bundle issued, read from the bundle directory: the model owner's record against
// which everything the data owner sends back is checked (the adapter's own config is only
// the other party's claim). Reading it verifies the bundle: its `offsite` section must be
// one `ot emulator` can have written, every block it maps must be stored and nothing else,
// and the stored token table must give the fingerprint the section records.
struct IssuedTensor {
  c10::ScalarType dtype = c10::kFloat;
  std::vector<int64_t> shape;
  int64_t block = -1;    // original block index; -1 for the head (final norm, untied LM head)
  bool adapter = false;  // an adapter block's tensor or, where the bundle issued it, the head's
};
struct IssuedAdapter {
  std::string source;  // the bundle directory
  std::string model_type;
  std::string fingerprint;
  OffsiteLayout layout;                        // adapter split, block map, head
  std::map<std::string, IssuedTensor> tensors; // original-model HF name -> as stored in the bundle
  std::map<int64_t, std::string> block_prefix; // original block -> its HF name prefix ("model.decoder.layers.6.")
  // The original block an HF name lies in (-1: none), by block_prefix.
  int64_t block_of(const std::string& hf_name) const;
};

// `namer` is any model of the bundle's architecture (the bundle itself or the full model):
// it supplies the parameter names of a block and the HF naming.
IssuedAdapter read_issued_adapter(const std::string& bundle_dir, BlockModelImpl& namer);

// Where an adapter goes: the full model (the model owner's plug-in: adapter blocks and,
// where issued, the head only), or the bundle it was trained in (evaluating the fine-tuned
// emulator; an adapter that trained other blocks, `--trainable emulator|all`, fits only here).
enum class AdapterTarget { kFullModel, kBundle };

// Checks `a` against `issued` without touching a model: format, model type, depth and
// fingerprint; the blocks its config claims are blocks the bundle issued; every tensor is
// an issued tensor of a claimed block (or the head, where issued and claimed) with the
// issued dtype and shape, or a bottleneck adapter's tensor of a claimed block; every
// issued tensor of a claimed block is present; all values are finite. Errors name `source`
// and the tensor or key.
void check_adapter(const Adapter& a, const IssuedAdapter& issued, AdapterTarget target, const std::string& source);

// check_adapter, then writes the adapter into `full` (all `num_original_layers` blocks, the
// fingerprint the bundle records).
void plug_in(BlockModelImpl& full, const Adapter& a, const std::string& source, const IssuedAdapter& issued);

// check_adapter, then loads the adapter into the bundle it was trained in.
void load_adapter_into(BlockModelImpl& bundle, const Adapter& a, const std::string& source, const IssuedAdapter& issued);

// Attaches the adapter in `adapter_dir` to `model`, loaded from `model_dir`: into a bundle it
// is loaded and checked against the bundle itself; into a full model it is plugged in and
// checked against `bundle_dir`, the bundle it was trained on. Without `bundle_dir` a full
// model is an error saying `missing_bundle` (the caller names its own option).
void attach_adapter(BlockModelImpl& model, const std::string& model_dir, const std::string& adapter_dir,
                    const std::string& bundle_dir, const std::string& missing_bundle);

// A vision bundle issued with a classifier of its own (`ot emulator --num-labels`) while the
// full model has none of that size: gives `full` the bundle's classifier (its classes, as its
// id2label names them, and the weights it issued, which a returned head then replaces), so
// that the bundle's head and the full model's agree. Nothing for a decoder or for a bundle without a classifier. Call it
// before read_issued_adapter with the full model as namer.
void adopt_issued_classifier(BlockModelImpl& full, const std::string& bundle_dir);

// Casts the tensors of a freshly extracted adapter to the dtypes the bundle issued them in
// (a bundle stored in fp32 and fine-tuned in bf16 returns fp32); bottleneck modules take
// their block's dtype.
void conform_to_issued(Adapter& a, const IssuedAdapter& issued);

}  // namespace ot
