// dist/context.cpp: see context.h.
#include "dist/context.h"

#include <cstdlib>
#include <iostream>
#include <string>

#include "dist/mpi_operations.h"
#include "dist/nccl_operations.h"
#include "util/error.h"
#include "util/progress.h"

namespace ot::dist {

namespace {

struct Current {
  Team team;
  std::shared_ptr<Communicator> host, cuda;
  std::shared_ptr<Communicator> local = std::make_shared<LocalCommunicator>();
  std::shared_ptr<MpiGroup> world_control;  // the world team's control group, for the top level
  double failure_wait_s = 60.0;             // $OT_FAILURE_WAIT_S, read when MPI starts
};

Current& current() {
  static Current c;
  return c;
}

}  // namespace

const Team& team() { return current().team; }
bool is_writer() { return team().rank() == 0; }

Communicator& host_communicator() {
  Current& c = current();
  if (!c.team.group || c.team.size() == 1) return *c.local;
  if (!c.host) c.host = make_mpi_communicator(c.team.group->dup());
  return *c.host;
}

Communicator& communicator_for(const at::Device& device) {
  Current& c = current();
  if (!c.team.group || c.team.size() == 1) return *c.local;
  if (device.is_cuda()) {
    if (!c.cuda) c.cuda = make_nccl_communicator(c.team.group->dup(), device.has_index() ? device.index() : 0);
    return *c.cuda;
  }
  OT_REQUIRE(device.is_cpu(), "data parallelism: no communicator for device ", device, " (CPU uses MPI, CUDA NCCL)");
  return host_communicator();
}

TeamScope::TeamScope(Team t) : previous_(current().team) {
  Current& c = current();
  c.team = std::move(t);
  c.host.reset();
  c.cuda.reset();
  silenced_ = c.team.rank() != 0;
  if (silenced_) ProgressBar::set_enabled(false);  // one console per team
}

TeamScope::~TeamScope() {
  Current& c = current();
  c.host.reset();
  c.cuda.reset();
  c.team = previous_;
  if (silenced_) ProgressBar::set_enabled(true);
}

void join_world_if_launched() {
  if (!launched_by_mpi()) return;
  init_mpi();
  Current& c = current();
  c.team.group = MpiGroup::world();
  c.team.control = c.team.group->dup();
  c.world_control = c.team.control;
  // Read now: a bad value must be said at start-up, not while another error is being handled.
  if (const char* env = std::getenv("OT_FAILURE_WAIT_S")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    OT_REQUIRE(end != env && *end == '\0' && v >= 0, "$OT_FAILURE_WAIT_S: expected a number of seconds >= 0, got '",
               env, "'");
    c.failure_wait_s = v;
  }
  c.host.reset();
  c.cuda.reset();
  if (c.team.rank() != 0) ProgressBar::set_enabled(false);
}

bool team_failed_together() {
  const Team& t = team();
  if (t.size() <= 1 || !t.control) return true;
  return t.control->arrive_within(current().failure_wait_s);
}

void end_job_after_lone_failure(const std::string& what, int rank, int size) {
  std::cerr << "ot: " << what << " on rank " << rank << " of " << size
            << " only; the other ranks cannot go on without it, so the job ends here. Completed runs are kept; "
               "run the same command again to continue the others.\n";
  abort_mpi(1);
}

void end_job_unless_all_failed(const std::string& error) {
  Current& c = current();
  if (!mpi_initialized() || !c.world_control) return;
  if (c.world_control->arrive_within(c.failure_wait_s)) return;
  end_job_after_lone_failure("the command failed (" + error + ")", c.world_control->rank(), c.world_control->size());
}

BucketOptions bucket_options_from_env() {
  BucketOptions o;
  if (const char* mb = std::getenv("OT_BUCKET_MB")) {
    char* end = nullptr;
    const double v = std::strtod(mb, &end);
    OT_REQUIRE(end != mb && *end == '\0' && v > 0, "$OT_BUCKET_MB: expected a positive number of MiB, got '", mb, "'");
    o.bucket_bytes = static_cast<int64_t>(v * 1024 * 1024);
  }
  if (const char* ov = std::getenv("OT_OVERLAP")) {
    const std::string s = ov;
    OT_REQUIRE(s == "0" || s == "1", "$OT_OVERLAP: expected 0 or 1, got '", s, "'");
    o.overlap = s == "1";
  }
  return o;
}

}  // namespace ot::dist
