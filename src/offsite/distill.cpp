// offsite/distill.cpp: see distill.h.
#include "offsite/distill.h"

#include <torch/torch.h>

#include <set>

#include "model/decoder_lm.h"
#include "offsite/block_input.h"
#include "util/error.h"

namespace ot {

namespace {

bool is_decoder(BlockModelImpl& m) { return dynamic_cast<DecoderLMImpl*>(&m) != nullptr; }

}  // namespace

at::Tensor kd_loss(const at::Tensor& teacher, const at::Tensor& student) {
  auto t = teacher.to(torch::kFloat), s = student.to(torch::kFloat);
  auto rms = torch::sqrt(t.pow(2).mean());
  return ((t - s) / rms).pow(2).mean();
}

Distiller::Distiller(std::shared_ptr<BlockModelImpl> bundle, std::shared_ptr<BlockModelImpl> teacher,
                     OffsiteLayout layout, DistillOptions o)
    : bundle_(std::move(bundle)), teacher_(std::move(teacher)), layout_(std::move(layout)), o_(o) {
  OT_REQUIRE(teacher_->num_blocks() == layout_.num_original, "distill: the teacher has ", teacher_->num_blocks(),
             " blocks but the bundle was made from a ", layout_.num_original, "-block model");
  OT_REQUIRE(o_.lm_weight >= 0.0 && o_.kd_weight >= 0.0 && (o_.lm_weight > 0.0 || o_.kd_weight > 0.0),
             "distill: lm_weight and kd_weight must be >= 0 and not both 0, got ", o_.lm_weight, " and ", o_.kd_weight);
  OT_REQUIRE(is_decoder(*bundle_) || o_.lm_weight == 0.0, "distill: a vision encoder has no language-model loss; "
             "distil it by feature KD alone (lm_weight 0, kd_weight > 0), got lm_weight ", o_.lm_weight);
  first_emulator_ = layout_.bottom;
  end_emulator_ = bundle_->num_blocks() - layout_.top;
  OT_REQUIRE(end_emulator_ > first_emulator_, "distill: the bundle has no emulator blocks");
  const int64_t middle = layout_.num_original - layout_.bottom - layout_.top;
  const bool same_depth = end_emulator_ - first_emulator_ == middle;
  for (int64_t p = first_emulator_; p < end_emulator_; ++p) {
    const int64_t next = p + 1 < end_emulator_ ? layout_.block_origin.at(static_cast<size_t>(p + 1))
                                               : layout_.bottom + middle;
    targets_.push_back(same_depth ? layout_.bottom + (p - first_emulator_) : next - 1);
  }
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

Distiller::Middle Distiller::run_to_emulator_output(const Batch& b, AttentionContext& ctx) {
  Middle m;
  {
    torch::NoGradGuard ng;  // embeddings and bottom adapter are frozen
    m.input = embed_batch(*bundle_, b, ctx, "distill");
    for (int64_t j = 0; j < first_emulator_; ++j) m.input = bundle_->run_block(j, m.input, ctx);
  }
  m.student = m.input;
  for (int64_t j = first_emulator_; j < end_emulator_; ++j) {
    m.student = bundle_->run_block(j, m.student, ctx);
    m.per_block.push_back(m.student);
  }
  return m;
}

std::vector<at::Tensor> Distiller::teacher_outputs(const at::Tensor& input, const AttentionContext& ctx,
                                                   bool every_block) {
  torch::NoGradGuard ng;
  std::vector<at::Tensor> out;
  at::Tensor t = input;
  for (int64_t i = layout_.bottom; i < layout_.num_original - layout_.top; ++i) {
    t = teacher_->run_block(i, t, ctx);
    if (every_block) out.push_back(t);
  }
  if (!every_block) out.push_back(t);
  return out;
}

at::Tensor Distiller::loss(const Batch& b, Metrics& extra) {
  AttentionContext ctx;
  const Middle m = run_to_emulator_output(b, ctx);
  at::Tensor total = torch::zeros({}, m.student.options().dtype(torch::kFloat));
  if (o_.kd_weight > 0.0) {
    const std::vector<at::Tensor> t = teacher_outputs(m.input, ctx, o_.layerwise);
    at::Tensor kd;
    if (o_.layerwise) {
      kd = torch::zeros({}, total.options());
      for (size_t j = 0; j < targets_.size(); ++j)
        kd = kd + kd_loss(t.at(static_cast<size_t>(targets_[j] - layout_.bottom)), m.per_block[j]);
      kd = kd / double(targets_.size());
    } else {
      kd = kd_loss(t.back(), m.student);
    }
    extra["kd"] = kd.item<double>();
    total = total + o_.kd_weight * kd;
  }
  if (o_.lm_weight > 0.0) {
    auto& lm_model = static_cast<DecoderLMImpl&>(*bundle_);  // checked in the constructor
    at::Tensor y = m.student;
    for (int64_t j = end_emulator_; j < bundle_->num_blocks(); ++j) y = bundle_->run_block(j, y, ctx);
    auto lm = causal_lm_loss(lm_model.head(y), b.labels);
    extra["lm"] = lm.item<double>();
    total = total + o_.lm_weight * lm;
  }
  return total;
}

double Distiller::kd_sum(const Batch& b) {
  torch::NoGradGuard ng;
  AttentionContext ctx;
  const Middle m = run_to_emulator_output(b, ctx);
  const at::Tensor t = teacher_outputs(m.input, ctx, /*every_block=*/false).back();
  // Per example, as kd_loss computes it over the batch: rms over that example's tensor.
  double sum = 0.0;
  for (int64_t i = 0; i < t.size(0); ++i) sum += kd_loss(t[i], m.student[i]).item<double>();
  return sum;
}

}  // namespace ot
