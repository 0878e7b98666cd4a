// experiment/team_sweep.h: the MPI-launched sweep driver.
//   mpirun -np N ot sweep SWEEP.toml --ranks-per-run G     (or srun --mpi=pmix ... )
// The world splits into teams of G ranks (MPI_Comm_split). World rank 0 holds the queue of
// runs not yet completed and hands the next one to whichever team asks (a long run never
// stalls the others); each team trains its run data-parallel (dist/context.h), and only
// the team's rank 0 writes the run's files. A failing run is recorded as failed in its
// result file and the team takes the next one. On SIGUSR1/SIGTERM no new run is handed out;
// running ones save their state and stay "running", so a restarted sweep continues them and
// skips completed runs.
// The queue is served by a thread of rank 0 while rank 0 also trains in team 0 (this needs
// MPI_THREAD_MULTIPLE); an MPI without it gets a dedicated rank 0 that only serves.
#pragma once

#include <string>
#include <vector>

#include "experiment/sweep.h"

namespace ot::experiment {

// Exit code of the whole sweep: 0 all completed, 1 some failed, kExitPreempted (75) stopped
// by a signal. Every rank returns the same code. Requires MPI initialised.
int run_sweep_in_teams(const std::vector<PlannedRun>& runs, int ranks_per_run, const std::string& command_line);

}  // namespace ot::experiment
