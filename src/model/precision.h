// model/precision.h: the compute precision of forward passes, as torch.amp / accelerate
// offer it. Weights (and the optimizer's state) stay in their own dtype, fp32 for mixed
// precision; inside an AutocastGuard, matrix products and attention run in bf16 or fp16
// while reductions, softmax and losses stay in fp32 (LibTorch's autocast op lists).
//   fp32  no autocast
//   bf16  bf16 autocast (CPU and CUDA)
//   fp16  fp16 autocast, CUDA only; training needs dynamic loss scaling (train/loss_scaler.h)
// Pure low-precision weights are a different thing: `--dtype bf16` converts the weights.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace ot {

enum class Precision { kFp32, kBf16, kFp16 };

// "fp32" | "bf16" | "fp16" (also "float32", "bfloat16", "float16"); throws ot::Error naming
// `option` otherwise.
Precision parse_precision(const std::string& text, const std::string& option = "--precision");
std::string precision_name(Precision p);
// The autocast dtype of a mixed precision (fp32: Float).
c10::ScalarType precision_dtype(Precision p);

// Throws ot::Error (naming `option`) for combinations that cannot run: fp16 autocast on a
// CPU, or mixed precision over weights that are not fp32 (mixed precision keeps fp32
// master weights; pure bf16/fp16 weights are --dtype's job).
void check_precision(Precision p, const c10::Device& device, c10::ScalarType weight_dtype,
                     const std::string& option = "--precision");

// Enables autocast for `device`'s type with `p`'s dtype for its lifetime (fp32: does
// nothing) and restores the previous state; the outermost guard clears autocast's cache of
// cast weights on exit, as torch.autocast does.
class AutocastGuard {
 public:
  AutocastGuard(const c10::Device& device, Precision p);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::kFloat;
};

// The dtype activations are computed in on `device` for weights of `weight_dtype`: the
// autocast dtype while autocast is on for that device type (fp32 weights), else the
// weights' own. Attention biases are built in it, so that masked positions hold the lowest
// value of the dtype they are added in (fp32's lowest would become -inf in fp16).
c10::ScalarType compute_dtype(const c10::Device& device, c10::ScalarType weight_dtype);

// Autocast state to carry into a recomputation (activation checkpointing runs the forward
// again during backward, outside the guard that was active the first time).
struct AutocastState {
  bool enabled = false;
  c10::ScalarType dtype = c10::kFloat;
  static AutocastState current(const c10::Device& device);
};
class AutocastRestore {
 public:
  AutocastRestore(const c10::Device& device, const AutocastState& s);
  ~AutocastRestore();
  AutocastRestore(const AutocastRestore&) = delete;
  AutocastRestore& operator=(const AutocastRestore&) = delete;

 private:
  c10::DeviceType type_;
  AutocastState prev_;
};

}  // namespace ot
