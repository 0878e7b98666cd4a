// train/optimizer.h: the optimizer every stage trains with (pretraining, distillation, both
// fine-tunings), in one place so the trainer and the benchmarks build the same one: AdamW in
// two parameter groups as in the paper's scripts, weight decay on matrices only (biases and
// norm weights, the tensors of one dimension, get none).
//
// Its step is torch::optim::AdamW's update, formula for formula (decoupled decay, bias-
// corrected moments, eps added after the square root), fused: a contiguous fp32 CPU parameter
// is updated in one pass over its parameter, gradient and two moments (at::parallel_for over
// chunks) instead of the ten or so whole-tensor passes the tensor-op update makes. Other
// parameters (GPU, 16-bit, strided, amsgrad) take the tensor-op update. State lives where
// torch::optim::AdamW keeps it, so save/load and the trainer's state files are unchanged.
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

namespace ot {

struct TrainerOptions;

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// Before a step's first backward: every parameter's gradient set to none (LibTorch 2.x's
// zero_grad default, spelled out so 1.13 does the same). Backward then hands its gradient
// over instead of adding it to zeros, which saves a pass over all gradients. A parameter that
// gets no gradient in a step is then left alone by AdamW (no decay, moments kept), as in
// PyTorch 2.x; the models here give every trained parameter a gradient in every step.
void drop_gradients(torch::optim::Optimizer& opt);

// `lr_scale` (empty: all 1) multiplies the learning rate of each parameter, e.g. a new
// classifier trained at 10x (TrainerOptions::head_lr_scale); each scale gets its own pair of
// groups, whose lr the trainer's schedule scales alike.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, const TrainerOptions& o,
                                                const std::vector<double>& lr_scale = {});

}  // namespace ot
