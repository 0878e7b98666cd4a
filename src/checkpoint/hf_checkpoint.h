// checkpoint/hf_checkpoint.h: Hugging Face checkpoint directories. Reads config.json and
// the weights in whichever layout the directory has: model.safetensors, sharded
// model.safetensors.index.json, pytorch_model.bin, or sharded pytorch_model.bin.index.json.
// Writes config.json + model.safetensors atomically (the directory appears complete or
// not at all) so that a written model reloads bit-exactly, here or in transformers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"

namespace ot {

// Parsed config.json of `dir`; throws ot::Error naming the file when missing/malformed.
nlohmann::json load_hf_config(const std::string& dir);

// Which weight files a directory holds, in the order they are preferred: model.safetensors,
// model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json. Throws
// ot::Error listing what was looked for when none is present, or naming the index and
// shard when an index lists a shard that does not exist.
struct WeightFiles {
  std::string format;              // "safetensors" or "torch"
  std::vector<std::string> files;  // absolute or dir-relative paths, shards in index order
  std::string index;               // the *.index.json used, empty if unsharded
};
WeightFiles find_weight_files(const std::string& dir);

// All tensors of the checkpoint in `dir`. Safetensors are memory-mapped (tensors view the
// file's pages, copy-on-write), so loading a large model holds one copy of the weights.
StateDict load_hf_weights(const std::string& dir);

// Writes `dir`/config.json (2-space indent) and `dir`/model.safetensors (tensors made
// contiguous on CPU, dtype kept; header metadata {"format":"pt"} as HF writes), replacing
// `dir` atomically. With `max_shard_bytes` > 0 the weights are split, in key order, into
// model-0000i-of-0000n.safetensors files of at most that many bytes each (a single larger
// tensor gets a shard of its own) plus an HF-compatible model.safetensors.index.json.
void save_hf_checkpoint(const std::string& dir, const nlohmann::json& config,
                        const StateDict& tensors, std::uint64_t max_shard_bytes = 0);

// The same files written into the existing directory `dir` (not atomic by itself): for
// callers that add files of their own inside write_dir_atomically.
void write_hf_checkpoint_files(const std::string& dir, const nlohmann::json& config,
                               const StateDict& tensors, std::uint64_t max_shard_bytes = 0);

}  // namespace ot
