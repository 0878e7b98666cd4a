// experiment/runner.h: runs one planned run of an experiment (experiment/sweep.h) from its
// resolved configuration to its HDF5 result file: takes the run's claim, executes its recipe
// (experiment/recipes/recipe.h: pretrain, distill, finetune, eval, efficiency, offsite) in its
// workspace (experiment/workspace.h: the run's directory and the caches runs share), records
// status and results, and prints the summary (experiment/summary.h).
// Each stage's output appears whole (written under a temporary name, then renamed), so a run
// interrupted by a signal or killed is continued by its next attempt: finished stages are
// skipped, the interrupted one resumes from its trainer state, and the result file keeps its
// records (status stays "running" until the run completes). A run whose file says failed, or
// has none, starts clean.
// Under data parallelism (dist/context.h) every rank of the team runs the same steps; only
// rank 0 writes files.
#pragma once

#include <string>
#include <vector>

#include "eval/harness.h"
#include "experiment/sweep.h"

namespace ot::experiment {

// kClaimed: another process holds the run's claim (it is running it now) or completed it meanwhile;
// nothing was written.
enum class RunState { kCompleted, kFailed, kPreempted, kClaimed };

struct RunOptions {
  std::string command_line;  // recorded in the result file
  bool skip_complete = true;  // a run found completed under its claim is left alone (ot sweep, ot run --sweep)
};

// Runs `run`, writing run.result_path (status running, then completed or failed). A failure
// is recorded and returned, not thrown (so that a sweep goes on); preemption (SIGUSR1/SIGTERM
// while training: state written, file left "running" for the next attempt) returns kPreempted.
// Two processes never run the same run at once: the writer holds an exclusive flock on
// <results_dir>/.claims/<experiment>/<run-id>.claim for the whole run (released by the kernel when
// the process dies, so a killed process leaves no stale claim) and (skip_complete) checks
// again, under it, that the run is not completed; otherwise the run is left alone (kClaimed).
RunState execute_run(const PlannedRun& run, const RunOptions& opts = {});

}  // namespace ot::experiment
