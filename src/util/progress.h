// util/progress.h: a progress bar for long loops (pretraining, distillation, fine-tuning,
// evaluation): step/total, named metrics (loss, lr), tokens/s and ETA on one line of
// stderr. On a terminal it redraws in place; otherwise (logs, Slurm) it prints a plain
// line at most every `log_interval` seconds so job logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ot {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, double log_interval_seconds = 10.0);
  ~ProgressBar();
  // Advances to `step` (absolute, 1-based) having processed `tokens` more tokens.
  void update(int64_t step, int64_t tokens, const std::vector<std::pair<std::string, double>>& metrics = {});
  // Prints a message above the bar (e.g. an evaluation result).
  void note(const std::string& message);
  void finish();
  static void set_enabled(bool on);  // globally (tests, non-zero ranks)

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_, step_ = 0, tokens_ = 0, start_step_ = -1, drawn_step_ = -1;
  std::vector<std::pair<std::string, double>> metrics_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  double interval_;
  bool tty_, finished_ = false;
};

// Formats seconds as "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

}  // namespace ot
