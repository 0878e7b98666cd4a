// util/signals.h: cooperative preemption. SIGUSR1 (Slurm's --signal=B:USR1@T) and SIGTERM
// set a flag that long loops poll at safe points; they then write their resumable state
// and the process exits with kExitPreempted so a batch script knows to requeue.
#pragma once

namespace ot {

constexpr int kExitPreempted = 75;  // EX_TEMPFAIL: "try again later"

void install_stop_signals();  // idempotent
bool stop_requested();
void request_stop();          // same as receiving the signal (tests, MPI peers)
void clear_stop_request();

}  // namespace ot
