// offsite/distill.cpp: see distill.h.
#include "offsite/distill.h"

#include <torch/torch.h>

#include <set>

#include "util/error.h"

namespace ot {

at::Tensor kd_loss(const at::Tensor& teacher, const at::Tensor& student) {
  auto t = teacher.to(torch::kFloat), s = student.to(torch::kFloat);
  auto rms = torch::sqrt(t.pow(2).mean());
  return ((t - s) / rms).pow(2).mean();
}

Distiller::Distiller(DecoderLM bundle, DecoderLM teacher, OffsiteLayout layout, DistillOptions o)
    : bundle_(std::move(bundle)), teacher_(std::move(teacher)), layout_(std::move(layout)), o_(o) {
  OT_REQUIRE(teacher_->num_blocks() == layout_.num_original, "distill: the teacher has ", teacher_->num_blocks(),
             " blocks but the bundle was made from a ", layout_.num_original, "-block model");
  OT_REQUIRE(o_.lm_weight > 0.0 || o_.kd_weight > 0.0, "distill: lm_weight and kd_weight are both 0");
  first_emulator_ = layout_.bottom;
  end_emulator_ = bundle_->num_blocks() - layout_.top;
  OT_REQUIRE(end_emulator_ > first_emulator_, "distill: the bundle has no emulator blocks");
}

NamedTensors Distiller::trainable() {
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  for (auto& p : bundle_->parameters()) p.set_requires_grad(false);
  NamedTensors out;
  std::set<const void*> seen;  // repeated (shared) emulator blocks train once
  for (int64_t j = first_emulator_; j < end_emulator_; ++j) {
    for (auto& item : bundle_->block(j).named_parameters(true)) {
      if (!seen.insert(item.value().unsafeGetTensorImpl()).second) continue;
      item.value().set_requires_grad(true);
      out.emplace_back("blocks." + std::to_string(j) + "." + item.key(), item.value());
    }
  }
  return out;
}

at::Tensor Distiller::loss(const Batch& b, Metrics& extra) {
  AttentionContext ctx = bundle_->make_context(b.input_ids, b.attention_mask, {}, 0);
  at::Tensor h;
  {
    torch::NoGradGuard ng;  // embeddings and bottom adapter are frozen
    h = bundle_->embed(b.input_ids, ctx);
    for (int64_t j = 0; j < first_emulator_; ++j) h = bundle_->run_block(j, h, ctx);
  }
  at::Tensor s = h;
  for (int64_t j = first_emulator_; j < end_emulator_; ++j) s = bundle_->run_block(j, s, ctx);
  at::Tensor total = torch::zeros({}, s.options().dtype(torch::kFloat));
  if (o_.kd_weight > 0.0) {
    at::Tensor t;
    {
      torch::NoGradGuard ng;
      t = h;
      for (int64_t i = layout_.bottom; i < layout_.num_original - layout_.top; ++i) t = teacher_->run_block(i, t, ctx);
    }
    auto kd = kd_loss(t, s);
    extra["kd"] = kd.item<double>();
    total = total + o_.kd_weight * kd;
  }
  if (o_.lm_weight > 0.0) {
    at::Tensor y = s;
    for (int64_t j = end_emulator_; j < bundle_->num_blocks(); ++j) y = bundle_->run_block(j, y, ctx);
    auto lm = causal_lm_loss(bundle_->head(y), b.labels);
    extra["lm"] = lm.item<double>();
    total = total + o_.lm_weight * lm;
  }
  return total;
}

}  // namespace ot
