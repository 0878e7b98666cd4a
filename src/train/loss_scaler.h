// train/loss_scaler.h: dynamic loss scaling for fp16 mixed precision, the rule of
// torch.amp.GradScaler. The loss is multiplied by `scale` before backward so that small
// gradients survive fp16; before the optimizer step the gradients are divided by it and
// checked: any inf/NaN skips the step and halves the scale, and `growth_interval`
// consecutive good steps double it. The scale and the count of good steps are part of the
// trainer state, so a resumed run scales exactly as an uninterrupted one.
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "train/trainer_options.h"  // LossScalerOptions

namespace ot {

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(LossScalerOptions o = {});

  double scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  int64_t skipped_steps() const { return skipped_; }

  at::Tensor scale_loss(const at::Tensor& loss) const { return loss * scale_; }
  // Divides every defined gradient of `params` by the scale in place; returns true when
  // any of them holds an inf or NaN (one host synchronisation).
  bool unscale_and_check(const std::vector<at::Tensor>& params) const;
  // After a step: found_inf -> the step was skipped, the scale backs off; else counts
  // towards growth.
  void update(bool found_inf);

  nlohmann::json state() const;
  void load_state(const nlohmann::json& j, const std::string& source);

 private:
  LossScalerOptions o_;
  double scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace ot
