// offsite/channel_pruning.cpp: see channel_pruning.h.
#include "offsite/channel_pruning.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "model/decoder_lm.h"
#include "model/harmonizer.h"
#include "model/lm_loss.h"
#include "model/mlp_channels.h"
#include "util/error.h"

namespace ot {
namespace {

// The weight and bias tensors of a projection that belong to channels (bias only when the
// projection expands: a contracting projection's bias is shared by every channel).
std::vector<at::Tensor> channel_tensors(const MlpProjection& p) {
  std::vector<at::Tensor> t{p.projection->weight};
  if (p.expands && p.projection->bias.defined()) t.push_back(p.projection->bias);
  return t;
}

// sum over the block's projections of per_channel_sum(f(w, k)) for its weight and bias,
// where f maps a parameter and its position in `flat` to the values to sum.
template <class Fn>
at::Tensor block_scores(const std::vector<MlpProjection>& ps, Fn f) {
  at::Tensor total;
  size_t k = 0;
  for (const MlpProjection& p : ps) {
    const at::Tensor w = f(p.projection->weight, k++);
    at::Tensor b;
    if (p.expands && p.projection->bias.defined()) b = f(p.projection->bias, k++);
    const at::Tensor s = per_channel_sum(p, w, b);
    total = total.defined() ? total + s : s;
  }
  return total;
}

}  // namespace

std::vector<std::pair<int64_t, at::Tensor>> emulator_channel_scores(BlockModelImpl& bundle, const OffsiteLayout& layout,
                                                                    const EmulatorOptions& o,
                                                                    const std::vector<Batch>& calibration) {
  OT_REQUIRE(o.channel_score == "magnitude" || o.channel_score == "gradot", "--channel-score: '", o.channel_score,
             "' is not a channel score (expected magnitude or gradot)");
  OT_REQUIRE(o.gradot_lambda >= 0.0, "--gradot-lambda: expected >= 0, got ", o.gradot_lambda);
  const ModelConfig& cfg = bundle.config();
  // Distinct emulator blocks, by first bundle position.
  std::vector<int64_t> positions;
  std::map<const BlockBase*, bool> seen;
  for (int64_t j = 0; j < bundle.num_blocks(); ++j) {
    if (layout.is_adapter(layout.block_origin.at(static_cast<size_t>(j)))) continue;
    if (as_harmonizer(bundle.block(j)) != nullptr) continue;  // no MLP of the model's own
    if (seen.emplace(&bundle.block(j), true).second) positions.push_back(j);
  }
  std::vector<std::vector<MlpProjection>> projections;
  for (int64_t j : positions) projections.push_back(mlp_projections(bundle.block(j), cfg));

  std::vector<std::pair<int64_t, at::Tensor>> out;
  if (o.channel_score == "magnitude") {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < positions.size(); ++i)
      out.emplace_back(positions[i], block_scores(projections[i], [](const at::Tensor& w, size_t) {
                         return w.detach().to(torch::kDouble).pow(2);
                       }));
    return out;
  }
  auto* decoder = dynamic_cast<DecoderLMImpl*>(&bundle);
  OT_REQUIRE(decoder != nullptr, "--channel-score gradot: needs the language-modelling loss of a decoder; "
             "score a vision encoder's channels by magnitude");
  OT_REQUIRE(!calibration.empty(), "--channel-score gradot: needs calibration batches (--calibration FILE)");
  std::vector<at::Tensor> params;
  for (const auto& ps : projections)
    for (const MlpProjection& p : ps)
      for (const at::Tensor& t : channel_tensors(p)) params.push_back(t);
  std::vector<bool> grad_was;
  for (auto& p : params) {
    grad_was.push_back(p.requires_grad());
    p.requires_grad_(true);
  }
  const bool was_training = decoder->is_training();
  decoder->eval();
  std::vector<at::Tensor> g_sum, g2_sum;
  for (const Batch& host : calibration) {
    const Batch b = to_device(host, decoder->device());
    const at::Tensor loss = causal_lm_loss(decoder->forward(b.input_ids, b.attention_mask).logits, b.labels);
    const auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
    for (size_t k = 0; k < params.size(); ++k) {
      const at::Tensor g = grads[k].defined() ? grads[k].detach().to(torch::kDouble)
                                              : torch::zeros(params[k].sizes(), torch::kDouble);
      if (g_sum.size() <= k) {
        g_sum.push_back(g.clone());
        g2_sum.push_back(g.pow(2));
      } else {
        g_sum[k] += g;
        g2_sum[k] += g.pow(2);
      }
    }
  }
  decoder->train(was_training);
  for (size_t k = 0; k < params.size(); ++k) params[k].requires_grad_(grad_was[k]);
  const double n = static_cast<double>(calibration.size());
  size_t base = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    size_t count = 0;
    out.emplace_back(positions[i], block_scores(projections[i], [&](const at::Tensor& w, size_t k) {
                       ++count;
                       const at::Tensor theta = w.detach().to(torch::kDouble);
                       const at::Tensor fisher = g2_sum[base + k] / n, mean_grad = g_sum[base + k] / n;
                       return 0.5 * fisher * theta.pow(2) + o.gradot_lambda * mean_grad * theta;
                     }));
    base += count;
  }
  return out;
}

std::vector<int64_t> channels_to_keep(const at::Tensor& scores, double ratio) {
  OT_REQUIRE(ratio >= 0.0 && ratio < 1.0, "--prune-channels: expected a ratio in [0, 1), got ", ratio);
  const int64_t F = scores.numel();
  const int64_t keep = std::max<int64_t>(1, F - static_cast<int64_t>(ratio * double(F)));
  const at::Tensor s = scores.to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = s.data_ptr<double>();
  std::vector<int64_t> order(static_cast<size_t>(F));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  order.resize(static_cast<size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<int64_t> prune_emulator_channels(BlockModelImpl& bundle, const OffsiteLayout& layout,
                                             const EmulatorOptions& o, const std::vector<Batch>& calibration) {
  const ModelConfig& cfg = bundle.config();
  if (o.prune_channels > 0.0) {
    const auto scores = emulator_channel_scores(bundle, layout, o, calibration);
    for (const auto& [position, s] : scores)
      keep_mlp_channels(bundle.block(position), cfg, channels_to_keep(s, o.prune_channels));
  }
  std::vector<int64_t> widths;
  for (int64_t j = 0; j < bundle.num_blocks(); ++j) {
    BlockBase& block = bundle.block(j);
    widths.push_back(as_harmonizer(block) != nullptr ? cfg.intermediate_size : mlp_width(block, cfg));
  }
  return widths;
}

}  // namespace ot
