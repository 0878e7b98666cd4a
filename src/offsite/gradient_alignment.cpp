// offsite/gradient_alignment.cpp: see gradient_alignment.h.
#include "offsite/gradient_alignment.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "model/lm_loss.h"
#include "util/error.h"

namespace ot {
namespace {

// The parameters of block i of `model`, in registration order.
std::vector<at::Tensor> block_params(DecoderLMImpl& model, int64_t i) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.block(i).named_parameters(/*recurse=*/true)) out.push_back(p.value());
  return out;
}

// Gradients of the LM loss on `b` with respect to each block's parameters in `blocks`.
std::vector<std::vector<at::Tensor>> block_gradients(DecoderLMImpl& model, const Batch& b,
                                                     const std::vector<int64_t>& blocks) {
  std::vector<at::Tensor> inputs;
  std::vector<size_t> counts;
  for (int64_t i : blocks) {
    auto ps = block_params(model, i);
    counts.push_back(ps.size());
    for (auto& p : ps) inputs.push_back(p);
  }
  std::vector<bool> grad_was;
  for (auto& p : inputs) {
    grad_was.push_back(p.requires_grad());
    p.requires_grad_(true);
  }
  const Batch d = to_device(b, model.device());
  const at::Tensor loss = causal_lm_loss(model.forward(d.input_ids, d.attention_mask).logits, d.labels);
  std::vector<at::Tensor> grads = torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/false,
                                                        /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t k = 0; k < inputs.size(); ++k) inputs[k].requires_grad_(grad_was[k]);
  std::vector<std::vector<at::Tensor>> out;
  size_t at = 0;
  for (size_t c : counts) {
    std::vector<at::Tensor> g;
    for (size_t k = 0; k < c; ++k, ++at)
      g.push_back(grads[at].defined() ? grads[at] : torch::zeros_like(inputs[at]));
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

double gradient_cosine(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  TORCH_INTERNAL_ASSERT(a.size() == b.size(), "gradient_cosine: ", a.size(), " tensors against ", b.size());
  double dot = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    TORCH_INTERNAL_ASSERT(a[i].sizes() == b[i].sizes(), "gradient_cosine: tensor ", i, " shapes differ");
    const at::Tensor x = a[i].detach().to(torch::kDouble).flatten(), y = b[i].detach().to(torch::kDouble).flatten();
    dot += x.dot(y).item<double>();
    aa += x.dot(x).item<double>();
    bb += y.dot(y).item<double>();
  }
  if (aa == 0.0 || bb == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return dot / (std::sqrt(aa) * std::sqrt(bb));
}

GradientAlignment gradient_alignment(DecoderLMImpl& bundle, DecoderLMImpl& full, const OffsiteLayout& layout,
                                     const std::vector<Batch>& batches) {
  OT_REQUIRE(!batches.empty(), "gradient alignment: no batches to measure on");
  TORCH_INTERNAL_ASSERT(static_cast<int64_t>(layout.block_origin.size()) == bundle.num_blocks(),
           "gradient alignment: the layout does not describe the bundle");
  GradientAlignment out;
  out.adapter_blocks = layout.adapter_blocks();
  std::vector<int64_t> in_bundle;  // bundle positions of the adapter blocks
  for (int64_t orig : out.adapter_blocks)
    for (int64_t p = 0; p < bundle.num_blocks(); ++p)
      if (layout.block_origin[static_cast<size_t>(p)] == orig && layout.is_adapter(orig)) {
        in_bundle.push_back(p);
        break;
      }
  TORCH_INTERNAL_ASSERT(in_bundle.size() == out.adapter_blocks.size(), "gradient alignment: an adapter block is not in the bundle");
  const bool bundle_training = bundle.is_training(), full_training = full.is_training();
  bundle.eval();
  full.eval();
  out.block_cosine.assign(out.adapter_blocks.size(), 0.0);
  for (const Batch& b : batches) {
    const auto through_emulator = block_gradients(bundle, b, in_bundle);
    const auto through_full = block_gradients(full, b, out.adapter_blocks);
    for (size_t k = 0; k < out.adapter_blocks.size(); ++k)
      out.block_cosine[k] += gradient_cosine(through_emulator[k], through_full[k]) / double(batches.size());
  }
  bundle.train(bundle_training);
  full.train(full_training);
  out.batches = static_cast<int64_t>(batches.size());
  double sum = 0.0;
  for (double c : out.block_cosine) sum += c;
  out.mean_cosine = out.block_cosine.empty() ? std::numeric_limits<double>::quiet_NaN()
                                             : sum / double(out.block_cosine.size());
  return out;
}

std::string format_gradient_alignment(const GradientAlignment& zero_shot,
                                      const std::optional<GradientAlignment>& distilled) {
  std::string out = "gradient alignment: cosine of the adapter's gradients through the emulator and through the full "
                    "model (" + std::to_string(zero_shot.batches) + " batches)\n";
  char line[128];
  std::snprintf(line, sizeof line, "  %-6s %10s%s\n", "block", "zero-shot", distilled ? "  distilled" : "");
  out += line;
  auto row = [&](const std::string& name, double zs, std::optional<double> d) {
    if (d) std::snprintf(line, sizeof line, "  %-6s %10.4f %10.4f\n", name.c_str(), zs, *d);
    else std::snprintf(line, sizeof line, "  %-6s %10.4f\n", name.c_str(), zs);
    out += line;
  };
  for (size_t k = 0; k < zero_shot.adapter_blocks.size(); ++k)
    row(std::to_string(zero_shot.adapter_blocks[k]), zero_shot.block_cosine[k],
        distilled ? std::optional<double>(distilled->block_cosine.at(k)) : std::nullopt);
  row("mean", zero_shot.mean_cosine, distilled ? std::optional<double>(distilled->mean_cosine) : std::nullopt);
  return out;
}

}  // namespace ot
