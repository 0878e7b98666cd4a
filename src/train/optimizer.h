// train/optimizer.h: the optimizer every stage trains with (pretraining, distillation, both
// fine-tunings), in one place so the trainer and the benchmarks build the same one: AdamW in
// two parameter groups as in the paper's scripts, weight decay on matrices only (biases and
// norm weights, the tensors of one dimension, get none).
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

namespace ot {

struct TrainerOptions;

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, const TrainerOptions& o);

}  // namespace ot
