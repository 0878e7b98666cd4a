// train/schedule.cpp: see schedule.h.
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace ot {

void check_schedule_kind(const std::string& kind, const std::string& option) {
  OT_REQUIRE(kind == "constant" || kind == "linear" || kind == "cosine", option, ": '", kind,
             "' is not a schedule (expected constant, linear or cosine)");
}

double LrSchedule::factor(int64_t s) const {
  if (s < warmup_steps) return double(s) / double(std::max<int64_t>(1, warmup_steps));
  if (kind == "constant") return 1.0;
  if (kind == "linear")
    return std::max(0.0, double(total_steps - s) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
  if (kind == "cosine") {
    double progress = double(s - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
    return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  fail("schedule: unknown kind '", kind, "'");
}

}  // namespace ot
