// util/progress.cpp: see progress.h.
#include "util/progress.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace ot {

namespace {
std::atomic<bool> g_enabled{true};

std::string fmt_metric(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (v != 0.0 && (a < 1e-3 || a >= 1e5)) std::snprintf(buf, sizeof buf, "%.2e", v);
  else std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}
}  // namespace

void ProgressBar::set_enabled(bool on) { g_enabled = on; }

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, double interval)
    : label_(std::move(label)), total_(total), interval_(interval), tty_(::isatty(2) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t step, int64_t tokens, const std::vector<std::pair<std::string, double>>& metrics) {
  if (start_step_ < 0) {
    start_step_ = step - 1;  // resumed runs: rates and ETA count only this process's steps
    start_ = std::chrono::steady_clock::now();
  }
  step_ = step;
  tokens_ += tokens;
  if (!metrics.empty()) metrics_ = metrics;
  draw(step_ >= total_);
}

void ProgressBar::note(const std::string& message) {
  if (!g_enabled) return;
  if (tty_) std::cerr << "\r\033[K";
  std::cerr << message << "\n";
  if (tty_) draw(true);
}

void ProgressBar::draw(bool force) {
  if (!g_enabled || finished_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (!force && since < (tty_ ? 0.2 : interval_)) return;
  last_draw_ = now;
  drawn_step_ = step_;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  int64_t done = step_ - start_step_;
  double rate = elapsed > 0 ? double(tokens_) / elapsed : 0.0;
  double eta = done > 0 ? elapsed / double(done) * double(total_ - step_) : NAN;
  std::ostringstream os;
  os << label_ << " ";
  if (tty_) {
    const int width = 20;
    int filled = total_ > 0 ? static_cast<int>(double(width) * double(step_) / double(total_)) : 0;
    os << "[" << std::string(static_cast<size_t>(std::min(filled, width)), '#')
       << std::string(static_cast<size_t>(width - std::min(filled, width)), '.') << "] ";
  }
  os << step_ << "/" << total_;
  for (const auto& m : metrics_) os << " " << m.first << " " << fmt_metric(m.second);
  char rbuf[32];
  std::snprintf(rbuf, sizeof rbuf, "%.0f", rate);
  os << " | " << rbuf << " tok/s | " << format_duration(elapsed) << " elapsed, ETA " << format_duration(eta);
  if (tty_) std::cerr << "\r\033[K" << os.str() << std::flush;
  else std::cerr << os.str() << "\n";
}

void ProgressBar::finish() {
  if (finished_) return;
  if (drawn_step_ != step_) draw(true);
  finished_ = true;
  if (g_enabled && tty_) std::cerr << "\n";
}

}  // namespace ot
