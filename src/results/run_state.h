// results/run_state.h: a run's state as the commands that list runs print it (`ot sweep
// plan`, `ot status`), read from its result file.
#pragma once

#include <string>

namespace ot::results {

// "pending" (no file yet), "running", "interrupted" (running, stopped by a signal with its
// state saved: the next attempt continues it), "completed", "failed", or "unreadable".
std::string run_state_of(const std::string& result_path);

}  // namespace ot::results
