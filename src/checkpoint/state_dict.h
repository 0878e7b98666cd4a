// checkpoint/state_dict.h: a named set of tensors in Hugging Face key order-independent
// form ("model.decoder.layers.0.fc1.weight" -> tensor). Every reader returns one, every
// writer takes one; models map it onto their parameters.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace ot {

using StateDict = std::map<std::string, at::Tensor>;

}  // namespace ot
