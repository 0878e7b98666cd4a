// model/layers.cpp: see layers.h.
#include "model/layers.h"

#include <torch/torch.h>

#include "util/error.h"

namespace ot::nn {

LinearImpl::LinearImpl(const LinearOptions& o) : options(o) {
  weight = register_parameter("weight", torch::empty({o.out_features, o.in_features}));
  if (o.bias) bias = register_parameter("bias", torch::empty({o.out_features}));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  return torch::nn::functional::linear(x, weight, bias);
}

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({in, out}));
  bias = register_parameter("bias", torch::empty({out}));
}

at::Tensor Conv1DImpl::forward(const at::Tensor& x) {
  auto shape = x.sizes().vec();
  shape.back() = out_features;
  return torch::addmm(bias, x.reshape({-1, in_features}), weight).view(shape);
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

RMSNormImpl::RMSNormImpl(int64_t d, double e) : dim(d), eps(e) {
  weight = register_parameter("weight", torch::empty({d}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  auto xf = x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t num, int64_t d, int64_t pad)
    : num_embeddings(num), embedding_dim(d), padding_idx(pad) {
  weight = register_parameter("weight", torch::empty({num, d}));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) {
  return torch::embedding(weight, ids, padding_idx);
}

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "bloom_gelu")  // BLOOM's own constant 0.79788456 in place of sqrt(2/pi)
    return x * 0.5 * (1.0 + torch::tanh(0.79788456 * x * (1.0 + 0.044715 * x * x)));
  if (name == "silu") return torch::silu(x);
  fail("activation '", name, "' is not supported (expected relu, gelu, gelu_new, bloom_gelu, silu)");
}

}  // namespace ot::nn
