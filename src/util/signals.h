// util/signals.h: cooperative preemption. SIGUSR1 (Slurm's --signal=B:USR1@T) and SIGTERM
// set a flag that long loops poll at safe points; they then write their resumable state
// and throw Preempted, which the place that records the run turns into a run left
// "running" for the next attempt, or into exit code kExitPreempted so a batch script knows
// to requeue.
#pragma once

#include <string>

#include "util/error.h"

namespace ot {

constexpr int kExitPreempted = 75;  // EX_TEMPFAIL: "try again later"

void install_stop_signals();  // idempotent
bool stop_requested();
void request_stop();          // same as receiving the signal (tests, MPI peers)
void clear_stop_request();

// Work stopped by a stop signal with its state saved: "<what> interrupted; its state is in
// <state_path> (run the same command again to resume)". An ot::Error, so code that does not
// tell preemption apart reports it as any other error.
class Preempted : public Error {
 public:
  Preempted(std::string what_stopped, std::string state_path);
  const std::string& what_stopped() const { return what_stopped_; }  // e.g. "fine-tuning"
  const std::string& state_path() const { return state_path_; }

 private:
  std::string what_stopped_, state_path_;
};

}  // namespace ot
