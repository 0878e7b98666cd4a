// util/signals.cpp: see signals.h.
#include "util/signals.h"

#include <csignal>
#include <utility>

namespace ot {

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = 1; }
void clear_stop_request() { g_stop = 0; }

Preempted::Preempted(std::string what_stopped, std::string state_path)
    : Error(what_stopped + " interrupted; its state is in " + state_path + " (run the same command again to resume)"),
      what_stopped_(std::move(what_stopped)),
      state_path_(std::move(state_path)) {}

}  // namespace ot
