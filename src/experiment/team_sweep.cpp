// experiment/team_sweep.cpp: see team_sweep.h.
#include "experiment/team_sweep.h"

#include <deque>
#include <iostream>
#include <thread>

#include "dist/context.h"
#include "dist/mpi_operations.h"
#include "dist/mpi_runtime.h"
#include "experiment/runner.h"
#include "results/run_file.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/signals.h"

namespace ot::experiment {

namespace {

constexpr int kRequestTag = 7101, kReplyTag = 7102;
constexpr int64_t kNoMoreRuns = -1;
enum Outcome : int64_t { kNone = 0, kDone = 1, kFailedRun = 2, kStopped = 3, kTakenElsewhere = 4 };

// World rank 0: hands out run indices until every team has been told there are no more.
void serve_queue(const dist::MpiGroup& queue, std::deque<int64_t> pending, int teams, const std::vector<PlannedRun>& runs) {
  int finished = 0;
  while (finished < teams) {
    int from = -1;
    const std::vector<int64_t> req = queue.recv_ints(-1, kRequestTag, &from);  // {team, last run, outcome, halt}
    const int64_t team = req.at(0), last = req.at(1), outcome = req.at(2), halt = req.at(3);
    if (last >= 0)
      std::cout << "sweep: team " << team << " " << (outcome == kDone             ? "completed"
                                                   : outcome == kFailedRun     ? "failed"
                                                   : outcome == kTakenElsewhere ? "left to another process"
                                                                                : "stopped")
                << " run " << last << " (" << runs[static_cast<size_t>(last)].run_id << ")" << std::endl;
    int64_t next = kNoMoreRuns;
    if (!stop_requested() && !halt && !pending.empty()) {
      next = pending.front();
      pending.pop_front();
      std::cout << "sweep: run " << next << " (" << runs[static_cast<size_t>(next)].run_id << ") -> team " << team << std::endl;
    }
    if (next == kNoMoreRuns) ++finished;
    queue.send_ints({next}, from, kReplyTag);
  }
}

}  // namespace

int run_sweep_in_teams(const std::vector<PlannedRun>& runs, int ranks_per_run, const std::string& command_line) {
  OT_REQUIRE(dist::mpi_initialized(), "ot sweep --ranks-per-run: start it with an MPI launcher (mpirun -np N, srun --mpi=pmix)");
  install_stop_signals();
  std::shared_ptr<dist::MpiGroup> world = dist::MpiGroup::world();
  const int W = world->size(), me = world->rank();
  const bool threaded = dist::mpi_thread_multiple();
  const int first = threaded ? 0 : 1;  // without MPI_THREAD_MULTIPLE rank 0 only serves
  const int workers = W - first;
  OT_REQUIRE(ranks_per_run >= 1, "--ranks-per-run: must be at least 1, got ", ranks_per_run);
  OT_REQUIRE(workers >= ranks_per_run && workers % ranks_per_run == 0, "--ranks-per-run ", ranks_per_run, ": the ",
             workers, " working rank(s) of this job", threaded ? "" : " (rank 0 only serves the queue: this MPI lacks MPI_THREAD_MULTIPLE)",
             " do not split into teams of ", ranks_per_run);
  const int teams = workers / ranks_per_run;
  const bool working = me >= first;
  const int team_id = working ? (me - first) / ranks_per_run : teams;
  std::shared_ptr<dist::MpiGroup> team = world->split(team_id, me);
  std::shared_ptr<dist::MpiGroup> queue = world->dup();

  std::thread server;
  if (me == 0) {
    std::deque<int64_t> pending;
    size_t done = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
      if (results::run_is_complete(runs[i].result_path)) ++done;
      else pending.push_back(static_cast<int64_t>(i));
    }
    std::cout << "sweep: " << runs.size() << " run(s), " << done << " already completed; " << teams << " team(s) of "
              << ranks_per_run << " rank(s)" << std::endl;
    auto serve = [queue, pending, teams, &runs] { serve_queue(*queue, pending, teams, runs); };
    if (threaded) server = std::thread(serve);
    else serve();
  }

  int64_t completed = 0, failed = 0, stopped = 0;
  if (working) {
    dist::TeamScope scope(dist::Team{team, team->dup()});
    const bool leader = team->rank() == 0;
    int64_t last = -1, outcome = kNone;
    for (;;) {
      std::vector<int64_t> next(1, kNoMoreRuns);
      if (leader) {
        queue->send_ints({team_id, last, outcome, stop_requested() ? 1 : 0}, 0, kRequestTag);
        next = queue->recv_ints(0, kReplyTag);
      }
      team->bcast_ints(next, 0);  // the leader's answer is the team's
      if (next.at(0) == kNoMoreRuns) break;
      const PlannedRun& run = runs[static_cast<size_t>(next[0])];
      if (leader)
        std::cout << "[team " << team_id << "] run " << next[0] << " " << run.run_id << " -> " << run.result_path
                  << " (rank " << me << " resident " << current_rss_mib() << " MiB)" << std::endl;
      RunOptions o;
      o.command_line = command_line;
      const RunState s = execute_run(run, o);
      last = next[0];
      if (s == RunState::kClaimed) {
        outcome = kTakenElsewhere;
      } else if (s == RunState::kCompleted) {
        outcome = kDone;
        ++completed;
      } else if (s == RunState::kFailed) {
        outcome = kFailedRun;
        ++failed;
      } else {
        outcome = kStopped;
        ++stopped;
      }
    }
  }
  if (server.joinable()) server.join();
  world->idle_barrier();  // a team done early sleeps here instead of spinning in the reduction below
  // Leaders count their team's runs once; the sums say what the whole sweep did.
  const bool leader = working && team->rank() == 0;
  auto comm = dist::make_mpi_communicator(world);
  const std::vector<double> t = comm->all_reduce_sum({leader ? double(completed) : 0.0, leader ? double(failed) : 0.0,
                                                      leader ? double(stopped) : 0.0, stop_requested() ? 1.0 : 0.0});
  if (me == 0)
    std::cout << runs.size() << " run(s): " << int64_t(t[0]) << " completed now, " << int64_t(t[1]) << " failed, "
              << int64_t(t[2]) << " stopped" << std::endl;
  if (t[2] > 0 || t[3] > 0) return kExitPreempted;
  return t[1] > 0 ? 1 : 0;
}

}  // namespace ot::experiment
