// dist/context.cpp: see context.h.
#include "dist/context.h"

#include <cstdlib>
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
  c.host.reset();
  c.cuda.reset();
  if (c.team.rank() != 0) ProgressBar::set_enabled(false);
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
