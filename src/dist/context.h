// dist/context.h: the team of ranks the current run trains on, process-wide. A process
// started without an MPI launcher is a team of one (LocalCommunicator, nothing to set up).
// `ot run`/`ot finetune`/... under mpirun make the whole MPI world one team; `ot sweep
// --ranks-per-run G` gives each run its team (experiment/team_sweep is the driver). Code that
// trains asks for the communicator of its device: MPI for CPU tensors, NCCL for CUDA.
// Only the team's rank 0 writes files (is_writer()).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "dist/communicator.h"
#include "dist/fusion_buffer.h"
#include "dist/mpi_runtime.h"

namespace ot::dist {

struct Team {
  std::shared_ptr<MpiGroup> group;    // null: a team of one
  std::shared_ptr<MpiGroup> control;  // a duplicate of group, only for agreeing on failures
  int rank() const { return group ? group->rank() : 0; }
  int size() const { return group ? group->size() : 1; }
};

const Team& team();
bool is_writer();  // rank 0 of the team

// The communicator of the current team for tensors on `device` (built once per team and
// device kind; NCCL's needs every rank of the team to call this in the same order).
Communicator& communicator_for(const at::Device& device);
// Host values only (metrics, flags, barriers): MPI, or local for a team of one.
Communicator& host_communicator();

// Makes `t` the current team until destroyed (then the previous one is back).
class TeamScope {
 public:
  explicit TeamScope(Team t);
  ~TeamScope();
  TeamScope(const TeamScope&) = delete;
  TeamScope& operator=(const TeamScope&) = delete;

 private:
  Team previous_;
  bool silenced_ = false;
};

// Under an MPI launcher: initialise MPI and make the whole world the current team; prints
// only on rank 0 from then on (progress bars and notes). No-op otherwise.
void join_world_if_launched();

// After an error on this rank: whether every rank of the team failed too (they all reach this
// call within $OT_FAILURE_WAIT_S seconds, default 60), so that the team can go on together.
// A team of one always has. When it returns false, teammates are stuck in a collective that
// will never complete: the caller must end the job (abort_mpi), not leave them waiting.
bool team_failed_together();
// Says that `what` happened on this rank (rank of size) only and ends the job (MPI_Abort).
[[noreturn]] void end_job_after_lone_failure(const std::string& what, int rank, int size);
// The same agreement for the whole MPI world (a command's top level, where teams no longer
// exist). Without MPI, or when every rank got here, returns; otherwise ends the job.
void end_job_unless_all_failed(const std::string& error);

// Gradient bucket settings of the current process ($OT_BUCKET_MB, $OT_OVERLAP=0/1).
BucketOptions bucket_options_from_env();

}  // namespace ot::dist
