// train/schedule.h: learning-rate schedules with linear warmup, with the exact semantics of
// transformers' get_{constant,linear,cosine}_schedule_with_warmup: the lr used by
// optimizer step s (0-based) is base_lr * factor(s).
#pragma once

#include <cstdint>
#include <string>

namespace ot {

struct LrSchedule {
  std::string kind = "linear";  // constant | linear | cosine
  double base_lr = 1e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double factor(int64_t step) const;
  double lr(int64_t step) const { return base_lr * factor(step); }
};

// Throws ot::Error for an unknown kind (naming `option`).
void check_schedule_kind(const std::string& kind, const std::string& option);

}  // namespace ot
