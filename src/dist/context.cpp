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
  c.host.reset();
  c.cuda.reset();
  if (c.team.rank() != 0) ProgressBar::set_enabled(false);
}

namespace {

double failure_wait_seconds() {
  const char* env = std::getenv("OT_FAILURE_WAIT_S");
  if (env == nullptr) return 60.0;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  OT_REQUIRE(end != env && *end == '\0' && v >= 0, "$OT_FAILURE_WAIT_S: expected a number of seconds, got '", env, "'");
  return v;
}

}  // namespace

bool team_failed_together() {
  const Team& t = team();
  if (t.size() <= 1 || !t.control) return true;
  return t.control->arrive_within(failure_wait_seconds());
}

void end_job_unless_all_failed(const std::string& error) {
  if (!mpi_initialized()) return;
  Current& c = current();
  if (!c.world_control) return;
  if (c.world_control->arrive_within(failure_wait_seconds())) return;
  std::cerr << "ot: rank " << c.world_control->rank() << " of " << c.world_control->size()
            << " failed where the other ranks did not (" << error
            << "); they cannot go on without it, so the job ends here. Completed runs are kept; "
               "an interrupted one continues when the same command runs again.\n";
  abort_mpi(1);
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
