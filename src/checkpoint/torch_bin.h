// checkpoint/torch_bin.h: reader for PyTorch `torch.save` state dicts in the zip format
// (torch >= 1.6), i.e. Hugging Face `pytorch_model.bin` files and their shards.
#pragma once

#include <string>

#include "checkpoint/state_dict.h"

namespace ot {

// All tensors of the state dict pickled in `path` (a dict of str -> Tensor), on CPU; with
// `entry`, of the state dict held under that key (a checkpoint saved as {"model": ...}).
// Tensors that shared storage when saved (tied weights) still share it. Throws ot::Error
// naming the file for a missing, truncated, legacy (pre-1.6, non-zip) or foreign file.
StateDict load_torch_bin(const std::string& path, const std::string& entry = "");

}  // namespace ot
