// model/layers.cpp: see layers.h.
#include "model/layers.h"

#include <cmath>

#include <torch/torch.h>

#include "util/error.h"

namespace ot::nn {

void ProjectionBase::add_lora(int64_t rank, double alpha, double dropout) {
  OT_REQUIRE(rank >= 1, "lora: rank must be >= 1, got ", rank);
  OT_REQUIRE(!has_lora(), "lora: already added to this projection");
  torch::NoGradGuard ng;
  auto opts = weight.options();
  // As PEFT: A ~ kaiming-uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0.
  double bound = 1.0 / std::sqrt(double(in_features));
  lora_A = register_parameter("lora_A", torch::empty({rank, in_features}, opts).uniform_(-bound, bound));
  lora_B = register_parameter("lora_B", torch::zeros({out_features, rank}, opts));
  lora_scale_ = alpha / double(rank);
  lora_dropout_ = dropout;
}

void ProjectionBase::merge_lora() {
  if (!has_lora()) return;
  torch::NoGradGuard ng;
  auto delta = torch::mm(lora_B.to(torch::kFloat), lora_A.to(torch::kFloat)) * lora_scale_;  // (out, in)
  if (weight_is_in_out()) delta = delta.t();
  weight.copy_((weight.to(torch::kFloat) + delta).to(weight.scalar_type()));
  parameters_.erase("lora_A");
  parameters_.erase("lora_B");
  lora_A = at::Tensor();
  lora_B = at::Tensor();
}

void ProjectionBase::add_bottleneck(int64_t size, double dropout) {
  OT_REQUIRE(size >= 1, "adapter: bottleneck size must be >= 1, got ", size);
  OT_REQUIRE(!has_bottleneck(), "adapter: already added to this projection");
  torch::NoGradGuard ng;
  auto opts = weight.options();
  double bound = 1.0 / std::sqrt(double(out_features));
  adapter_down = register_parameter("adapter_down", torch::empty({size, out_features}, opts).uniform_(-bound, bound));
  adapter_down_bias = register_parameter("adapter_down_bias", torch::zeros({size}, opts));
  adapter_up = register_parameter("adapter_up", torch::zeros({out_features, size}, opts));
  adapter_up_bias = register_parameter("adapter_up_bias", torch::zeros({out_features}, opts));
  adapter_dropout_ = dropout;
}

void ProjectionBase::keep_outputs(const at::Tensor& index) {
  OT_REQUIRE(!has_lora() && !has_bottleneck(), "channel pruning: a projection carrying LoRA or a bottleneck adapter "
             "cannot shrink");
  torch::NoGradGuard ng;
  const at::Tensor idx = index.to(weight.device(), torch::kLong);
  weight.set_data(weight.index_select(output_dim(), idx).contiguous());
  if (bias.defined()) bias.set_data(bias.index_select(0, idx).contiguous());
  out_features = idx.numel();
}

void ProjectionBase::keep_inputs(const at::Tensor& index) {
  OT_REQUIRE(!has_lora() && !has_bottleneck(), "channel pruning: a projection carrying LoRA or a bottleneck adapter "
             "cannot shrink");
  torch::NoGradGuard ng;
  const at::Tensor idx = index.to(weight.device(), torch::kLong);
  weight.set_data(weight.index_select(1 - output_dim(), idx).contiguous());
  in_features = idx.numel();
}

void ProjectionBase::place_outputs(int64_t count, const at::Tensor& positions) {
  OT_REQUIRE(count >= out_features && positions.numel() == out_features, "place_outputs: ", out_features,
             " outputs into ", count, " at ", positions.numel(), " positions");
  torch::NoGradGuard ng;
  const at::Tensor at = positions.to(weight.device(), torch::kLong);
  std::vector<int64_t> shape = weight.sizes().vec();
  shape[static_cast<size_t>(output_dim())] = count;
  weight.set_data(torch::zeros(shape, weight.options()).index_copy_(output_dim(), at, weight));
  if (bias.defined()) bias.set_data(torch::zeros({count}, bias.options()).index_copy_(0, at, bias));
  out_features = count;
}

void ProjectionBase::grow_inputs(int64_t count) {
  OT_REQUIRE(count >= in_features, "grow_inputs: ", count, " < ", in_features);
  torch::NoGradGuard ng;
  const int64_t dim = 1 - output_dim();
  std::vector<int64_t> shape = weight.sizes().vec();
  shape[static_cast<size_t>(dim)] = count;
  at::Tensor w = torch::zeros(shape, weight.options());
  w.narrow(dim, 0, in_features).copy_(weight);
  weight.set_data(w);
  in_features = count;
}

at::Tensor ProjectionBase::singular_values() const {
  torch::NoGradGuard ng;
  at::Tensor w = is_low_rank() ? torch::mm(svd_b.to(torch::kDouble), svd_a.to(torch::kDouble)) : weight.to(torch::kDouble);
  if (!is_low_rank() && weight_is_in_out()) w = w.t();
  return std::get<1>(torch::linalg_svd(w, /*full_matrices=*/false)).cpu();
}

void ProjectionBase::factorize(int64_t r) {
  OT_REQUIRE(!is_low_rank(), "svd: the projection is already low rank");
  OT_REQUIRE(!has_lora() && !has_bottleneck(), "svd: a projection carrying LoRA or a bottleneck adapter cannot be factorized");
  torch::NoGradGuard ng;
  const int64_t rank = std::max<int64_t>(1, std::min(r, std::min(in_features, out_features)));
  at::Tensor w = weight.to(torch::kDouble);
  if (weight_is_in_out()) w = w.t();  // (out, in)
  auto [u, sv, vh] = torch::linalg_svd(w, /*full_matrices=*/false);
  const at::Tensor root = sv.narrow(0, 0, rank).sqrt();
  const at::Tensor a = root.unsqueeze(1) * vh.narrow(0, 0, rank);     // (rank, in)
  const at::Tensor b = u.narrow(1, 0, rank) * root.unsqueeze(0);      // (out, rank)
  const auto opts = weight.options();
  const bool grad = weight.requires_grad();
  parameters_.erase("weight");
  weight = at::Tensor();
  svd_a = register_parameter("svd_a", a.to(opts.dtype()).contiguous(), grad);
  svd_b = register_parameter("svd_b", b.to(opts.dtype()).contiguous(), grad);
}

void ProjectionBase::make_low_rank(int64_t r) {
  OT_REQUIRE(!is_low_rank(), "svd: the projection is already low rank");
  OT_REQUIRE(r >= 1 && r <= std::min(in_features, out_features), "svd: rank ", r, " outside [1, ",
             std::min(in_features, out_features), "]");
  const auto opts = weight.options();
  const bool grad = weight.requires_grad();
  parameters_.erase("weight");
  weight = at::Tensor();
  svd_a = register_parameter("svd_a", torch::empty({r, in_features}, opts), grad);
  svd_b = register_parameter("svd_b", torch::empty({out_features, r}, opts), grad);
}

void ProjectionBase::densify() {
  if (!is_low_rank()) return;
  torch::NoGradGuard ng;
  at::Tensor w = torch::mm(svd_b.to(torch::kFloat), svd_a.to(torch::kFloat));  // (out, in)
  if (weight_is_in_out()) w = w.t();
  w = w.to(svd_a.scalar_type()).contiguous();
  const bool grad = svd_a.requires_grad();
  parameters_.erase("svd_a");
  parameters_.erase("svd_b");
  svd_a = svd_b = at::Tensor();
  weight = register_parameter("weight", w, grad);
}

at::Tensor ProjectionBase::low_rank_or(const at::Tensor& x, const std::function<at::Tensor()>& dense) {
  if (!is_low_rank()) return dense();
  namespace F = torch::nn::functional;
  const at::Tensor y = F::linear(F::linear(x, svd_a), svd_b);
  return bias.defined() ? y + bias : y;
}

at::Tensor ProjectionBase::with_peft(const at::Tensor& x, at::Tensor y) {
  namespace F = torch::nn::functional;
  if (has_lora()) {
    auto xd = lora_dropout_ > 0 ? F::dropout(x, F::DropoutFuncOptions().p(lora_dropout_).training(is_training())) : x;
    y = y + F::linear(F::linear(xd, lora_A), lora_B) * lora_scale_;
  }
  if (has_bottleneck()) {
    auto h = torch::relu(F::linear(y, adapter_down, adapter_down_bias));
    if (adapter_dropout_ > 0) h = F::dropout(h, F::DropoutFuncOptions().p(adapter_dropout_).training(is_training()));
    y = y + F::linear(h, adapter_up, adapter_up_bias);
  }
  return y;
}

LinearImpl::LinearImpl(const LinearOptions& o) : options(o) {
  in_features = o.in_features;
  out_features = o.out_features;
  weight = register_parameter("weight", torch::empty({o.out_features, o.in_features}));
  if (o.bias) bias = register_parameter("bias", torch::empty({o.out_features}));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  return with_peft(x, low_rank_or(x, [&] { return torch::nn::functional::linear(x, weight, bias); }));
}

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) {
  in_features = in;
  out_features = out;
  weight = register_parameter("weight", torch::empty({in, out}));
  bias = register_parameter("bias", torch::empty({out}));
}

at::Tensor Conv1DImpl::forward(const at::Tensor& x) {
  auto shape = x.sizes().vec();
  shape.back() = out_features;
  return with_peft(x, low_rank_or(x, [&] { return torch::addmm(bias, x.reshape({-1, in_features}), weight).view(shape); }));
}

LayerNormImpl::LayerNormImpl(const LayerNormOptions& o) : options(o) {
  if (o.affine) {
    weight = register_parameter("weight", torch::empty({o.dim}));
    bias = register_parameter("bias", torch::empty({o.dim}));
  }
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) {
  return torch::layer_norm(x, {options.dim}, weight, bias, options.eps);
}

RMSNormImpl::RMSNormImpl(int64_t d, double e, bool p) : dim(d), eps(e), plus_one(p) {
  weight = register_parameter("weight", torch::empty({d}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  auto xf = x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (plus_one) return (normed * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t num, int64_t d, int64_t pad)
    : num_embeddings(num), embedding_dim(d), padding_idx(pad) {
  weight = register_parameter("weight", torch::empty({num, d}));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) {
  return torch::embedding(weight, ids, padding_idx);
}

PatchConvImpl::PatchConvImpl(int64_t in_channels, int64_t out, int64_t p, bool with_bias) : patch(p) {
  weight = register_parameter("weight", torch::empty({out, in_channels, p, p}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
}

at::Tensor PatchConvImpl::forward(const at::Tensor& pixels) {
  return torch::conv2d(pixels, weight, bias, /*stride=*/{patch, patch});
}

at::Tensor resize_patch_positions(const at::Tensor& positions, int64_t h, int64_t w, bool vit_4_35) {
  const int64_t n = positions.size(1) - 1, C = positions.size(2);
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(double(n))));
  OT_REQUIRE(g * g == n, "position embeddings: ", n, " patch positions do not form a square grid");
  if (h == g && w == g) return positions;
  auto grid = positions.narrow(1, 1, n).reshape({1, g, g, C}).permute({0, 3, 1, 2});  // (1, C, g, g)
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().mode(torch::kBicubic).align_corners(false);
  if (vit_4_35)
    options.scale_factor(std::vector<double>{(double(h) + 0.1) / double(g), (double(w) + 0.1) / double(g)});
  else
    options.size(std::vector<int64_t>{h, w});
  grid = F::interpolate(grid, options);
  OT_REQUIRE(grid.size(2) == h && grid.size(3) == w, "position embeddings: resized to ", grid.size(2), " x ",
             grid.size(3), " patches instead of ", h, " x ", w);
  grid = grid.permute({0, 2, 3, 1}).reshape({1, h * w, C});
  return torch::cat({positions.narrow(1, 0, 1), grid}, 1);
}

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "bloom_gelu")  // BLOOM's own constant 0.79788456 in place of sqrt(2/pi)
    return x * 0.5 * (1.0 + torch::tanh(0.79788456 * x * (1.0 + 0.044715 * x * x)));
  if (name == "silu") return torch::silu(x);
  if (name == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  fail("activation '", name, "' is not supported (expected relu, gelu, gelu_new, bloom_gelu, silu, quick_gelu)");
}

}  // namespace ot::nn
