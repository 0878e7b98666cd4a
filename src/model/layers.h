// model/layers.h: the parameterised building blocks of every family, registered under the
// names Hugging Face checkpoints use ("weight", "bias"). Parameters are allocated
// uninitialised: a loaded checkpoint replaces them without a wasted random init, and
// `init_weights` (model/decoder_lm.h) draws them HF-style when training from scratch.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>

namespace ot::nn {

struct LinearOptions {
  LinearOptions(int64_t in, int64_t out) : in_features(in), out_features(out) {}
  int64_t in_features;
  int64_t out_features;
  bool bias = true;
  LinearOptions& with_bias(bool b) { bias = b; return *this; }
};

// Parameter-efficient additions a projection can carry (offsite/peft.h decides where):
//   LoRA        y += dropout(x) A^T B^T * alpha / r, A (r, in), B (out, r); B starts at 0
//   bottleneck  y += up(dropout(relu(down(y)))), down (size, out), up (out, size); up starts at 0
// Both start as the identity change, so adding them does not alter the model's output.
class ProjectionBase : public torch::nn::Module {
 public:
  void add_lora(int64_t rank, double alpha, double dropout);
  // Folds LoRA into the weight (W += scale * B A, transposed for Conv1D) and removes it.
  void merge_lora();
  bool has_lora() const { return lora_A.defined(); }
  void add_bottleneck(int64_t size, double dropout);
  bool has_bottleneck() const { return adapter_down.defined(); }
  // Structured pruning: keeps only the outputs (or inputs) listed in `index` (int64), so the
  // projection computes exactly those entries of its former result (or ignores the other
  // inputs). Refused once LoRA or a bottleneck is attached (their shapes follow the weight).
  void keep_outputs(const at::Tensor& index);
  void keep_inputs(const at::Tensor& index);
  // The weight's dimension that indexes outputs (Linear 0, Conv1D 1); inputs are the other.
  int64_t output_dim() const { return weight_is_in_out() ? 1 : 0; }
  // The inverse of keep_* for export: `count` outputs, the current ones at `positions`
  // (int64, one per current output) and zero elsewhere; `count` inputs, the current ones
  // first. Exact for an MLP channel: one whose weights are all zero contributes nothing.
  void place_outputs(int64_t count, const at::Tensor& positions);
  void grow_inputs(int64_t count);

  // Low rank (truncated SVD): W (out, in) = U S V^T is replaced by its `rank` leading
  // triplets as two factors, svd_a = sqrt(S) V^T (rank, in) and svd_b = U sqrt(S) (out, rank),
  // registered in place of `weight`; the projection computes x A^T B^T + b. factorize()
  // computes them from the weight; make_low_rank() only shapes them (for loading);
  // densify() multiplies them out into `weight` again.
  void factorize(int64_t rank);
  void make_low_rank(int64_t rank);
  void densify();
  bool is_low_rank() const { return svd_a.defined(); }
  int64_t rank() const { return is_low_rank() ? svd_a.size(0) : std::min(in_features, out_features); }
  // W's singular values (descending), in float64 on the CPU.
  at::Tensor singular_values() const;
  at::Tensor svd_a, svd_b;
  int64_t in_features = 0, out_features = 0;
  at::Tensor weight, bias;
  at::Tensor lora_A, lora_B, adapter_down, adapter_down_bias, adapter_up, adapter_up_bias;

 protected:
  // Adds the enabled PEFT paths to the base output y = base(x).
  at::Tensor with_peft(const at::Tensor& x, at::Tensor y);
  // x A^T B^T + b when low rank, else dense().
  at::Tensor low_rank_or(const at::Tensor& x, const std::function<at::Tensor()>& dense);
  virtual bool weight_is_in_out() const = 0;  // Conv1D stores (in, out)
  double lora_scale_ = 0.0, lora_dropout_ = 0.0, adapter_dropout_ = 0.0;
};

// y = x W^T + b, weight (out, in) as in torch.nn.Linear.
class LinearImpl : public ProjectionBase {
 public:
  explicit LinearImpl(const LinearOptions& o);
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., out)
  LinearOptions options;

 protected:
  bool weight_is_in_out() const override { return false; }
};
TORCH_MODULE(Linear);

// GPT-2's Conv1D: y = x W + b with weight stored (in, out).
class Conv1DImpl : public ProjectionBase {
 public:
  Conv1DImpl(int64_t in, int64_t out);
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., out)

 protected:
  bool weight_is_in_out() const override { return true; }
};
TORCH_MODULE(Conv1D);

struct LayerNormOptions {
  explicit LayerNormOptions(int64_t d) : dim(d) {}
  int64_t dim;
  double eps = 1e-5;
  bool affine = true;
  LayerNormOptions& with_eps(double e) { eps = e; return *this; }
  LayerNormOptions& with_affine(bool a) { affine = a; return *this; }
};

class LayerNormImpl : public torch::nn::Module {
 public:
  explicit LayerNormImpl(const LayerNormOptions& o);
  at::Tensor forward(const at::Tensor& x);
  LayerNormOptions options;
  at::Tensor weight, bias;
};
TORCH_MODULE(LayerNorm);

// LLaMA's RMSNorm: x_hat = x / sqrt(mean(x^2) + eps) in fp32, then weight * x_hat cast back
// to x's dtype, as HF does. `plus_one` (Gemma): (x_hat * (1 + weight)) in fp32, then cast;
// its weight starts at 0.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, bool plus_one = false);
  at::Tensor forward(const at::Tensor& x);
  int64_t dim;
  double eps;
  bool plus_one;
  at::Tensor weight;
};
TORCH_MODULE(RMSNorm);

// Token/position embedding table (num, dim); `padding_idx` gets no gradient, as in HF.
class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num, int64_t dim, int64_t padding_idx = -1);
  at::Tensor forward(const at::Tensor& ids);  // (B, T) -> (B, T, dim)
  int64_t num_embeddings, embedding_dim, padding_idx;
  at::Tensor weight;
};
TORCH_MODULE(Embedding);

// A vision encoder's patch projection: a Conv2d with kernel = stride = patch, weight
// (out, in_channels, patch, patch) as torch.nn.Conv2d stores it, optional bias.
class PatchConvImpl : public torch::nn::Module {
 public:
  PatchConvImpl(int64_t in_channels, int64_t out, int64_t patch, bool bias);
  at::Tensor forward(const at::Tensor& pixels);  // (B, in, H, W) -> (B, out, H / patch, W / patch)
  int64_t patch;
  at::Tensor weight, bias;
};
TORCH_MODULE(PatchConv);

// Position embeddings of a square grid of patches (1, 1 + g*g, C) -> (1, 1 + h*w, C) for an
// image of h x w patches: the class position kept, the grid resized bicubically
// (align_corners false). `vit_4_35` follows transformers 4.35's ViT (scale factors
// (h + 0.1) / g, (w + 0.1) / g); otherwise the output size is given directly, as later
// transformers do for CLIP. Unchanged when the grid already matches.
at::Tensor resize_patch_positions(const at::Tensor& positions, int64_t h, int64_t w, bool vit_4_35);

// Activation by HF name: relu, gelu (erf), gelu_new / gelu_pytorch_tanh (tanh form),
// bloom_gelu (BLOOM's tanh form with its own constant), silu, quick_gelu (CLIP's
// x * sigmoid(1.702 x)).
at::Tensor activation(const std::string& name, const at::Tensor& x);

}  // namespace ot::nn
