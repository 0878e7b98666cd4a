// experiment/runner.cpp: see runner.h.
#include "experiment/runner.h"

#include <ATen/Parallel.h>
#include <torch/version.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include "dist/context.h"
#include "experiment/jobs.h"
#include "experiment/recipes/recipe.h"
#include "experiment/spec.h"
#include "experiment/summary.h"
#include "experiment/workspace.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/host_threads.h"
#include "util/memory.h"
#include "util/signals.h"

namespace ot::experiment {

namespace {

namespace fs = std::filesystem;

// A run's claim: an exclusive flock taken without waiting (held() false: another process
// holds it). The file stays (removing it would let two processes lock two different files);
// the kernel drops the lock when the holder exits or is killed, so no claim goes stale.
class RunClaim {
 public:
  explicit RunClaim(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    OT_REQUIRE(fd_ >= 0, path, ": cannot create the run's claim file (", std::strerror(errno), ")");
    int rc;
    while ((rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    OT_REQUIRE(rc == 0 || errno == EWOULDBLOCK, path, ": cannot lock the run's claim file (", std::strerror(errno), ")");
    held_ = rc == 0;
  }
  ~RunClaim() { ::close(fd_); }
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  bool held() const { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

// Runs the configured recipe in the run's workspace; returns the rows it evaluated. resume:
// continue an interrupted attempt (its finished stages and saved trainer states stay);
// otherwise the run's directory starts clean (shared caches stay).
std::vector<SettingResult> run_recipe(const PlannedRun& plan, const RuntimeSpec& runtime, results::RunRecorder* rec,
                                      bool resume) {
  const ExperimentSpec spec = spec_of(plan.config, runtime);
  const std::string where = plan.config.where("experiment.recipe");
  const Recipe& recipe = recipe_named(spec.recipe, where);  // an entry of the registry, not of `where`
  Workspace workspace(spec, plan.run_id, rec);
  workspace.prepare_run_dir(resume);
  workspace.prepare_shared_inputs();
  RunContext run(spec, workspace, rec);
  recipe.run(run);
  return run.rows();
}

}  // namespace

RunState execute_run(const PlannedRun& plan, const RunOptions& opts) {
  const Config& c = plan.config;
  set_host_threads(static_cast<int>(c.integer("runtime.threads")));
  const bool writer = dist::is_writer();
  // The claim (rank 0's decides for the team): taken before the result file is even read.
  std::unique_ptr<RunClaim> claim;
  bool taken = false;
  if (writer) {
    // Beside the experiment's folder, not in it: that folder holds run files only.
    const fs::path dir = fs::path(c.str("experiment.results_dir")) / ".claims" / c.str("experiment.name");
    std::error_code ec;
    fs::create_directories(dir, ec);
    OT_REQUIRE(!ec, dir.string(), ": cannot create the claims directory (", ec.message(), ")");
    const std::string claim_path = (dir / (plan.run_id + ".claim")).string();
    claim = std::make_unique<RunClaim>(claim_path);
    if (!claim->held()) {
      std::cerr << "ot: run " << plan.run_id << " is being run by another process (its claim " << claim_path
                << " is held); left to it\n";
      taken = true;
    } else if (opts.skip_complete && results::run_is_complete(plan.result_path)) {
      std::cerr << "ot: run " << plan.run_id << " was completed by another process meanwhile (" << plan.result_path
                << ")\n";
      taken = true;
    }
  }
  if (dist::host_communicator().all_reduce_max(taken ? 1.0 : 0.0) > 0) return RunState::kClaimed;
  results::RunInfo info;
  info.run_id = plan.run_id;
  info.experiment = c.str("experiment.name");
  info.config_toml = c.to_toml();
  info.command_line = opts.command_line;
  info.libtorch_version = TORCH_VERSION;
  info.world_size = dist::team().size();
  // An attempt that was interrupted (status still "running") is continued: its finished
  // stages, trainer states and records stay. Rank 0 decides for the team.
  std::optional<results::RunReader> earlier;
  if (writer && file_exists(plan.result_path)) {
    try {
      results::RunReader r = results::RunReader::open(plan.result_path);
      if (r.status() == results::RunStatus::Running && r.has_attribute("run_id") &&
          r.string_attribute("run_id") == plan.run_id)
        earlier = std::move(r);
    } catch (const std::exception& e) {
      std::cerr << "ot: " << plan.result_path << " is unreadable (" << e.what() << "); the run starts over\n";
    }
  }
  const bool resume = dist::host_communicator().all_reduce_max(earlier ? 1.0 : 0.0) > 0;
  std::unique_ptr<results::RunRecorder> rec;
  if (writer) {
    rec = earlier ? std::make_unique<results::RunRecorder>(plan.result_path, info, *earlier)
                  : std::make_unique<results::RunRecorder>(plan.result_path, info);
    if (earlier) std::cerr << "ot: run " << plan.run_id << ": continuing the interrupted attempt\n";
    rec->set_attribute("recipe", c.str("experiment.recipe"));
    rec->set_attribute("label", c.str("experiment.label").empty() ? c.str("experiment.name") : c.str("experiment.label"));
    rec->set_attribute("group_id", group_id_of(c));
    rec->set_attribute("sweep_params", params_json(plan.params));
    rec->set_attribute("paper_table", c.str("experiment.paper_table"));
    rec->set_attribute("seed", c.integer("experiment.seed"));
    // What earlier runs of this process left resident: a long sweep's memory stays flat.
    rec->set_attribute("rss_start_mib", current_rss_mib());
    rec->set_attribute("attempts", earlier && earlier->has_attribute("attempts") ? earlier->int_attribute("attempts") + 1
                                                                                : int64_t(1));
  }
  // The runtime settings are checked before the run is: a device or precision this machine
  // cannot use is the command's error, not a failed run.
  const RuntimeSpec runtime = runtime_spec_of(c);
  std::vector<SettingResult> rows;
  try {
    rows = run_recipe(plan, runtime, rec.get(), resume);
    if (rec) rec->complete();
  } catch (const Preempted& e) {
    // Left "running": the next attempt (a requeued job, the same command again) continues it.
    if (rec) {
      rec->set_attribute("interrupted", e.what());
      rec->flush();
    }
    if (writer) std::cerr << "ot: run " << plan.run_id << " stopped by a signal; its state is saved and the next attempt continues it\n";
    return RunState::kPreempted;
  } catch (const std::exception& e) {
    if (rec) rec->fail(e.what());
    std::cerr << "ot: run " << plan.run_id << " failed: " << e.what() << "\n";
    // A failure every rank of the team saw (bad data, a bad value) leaves the team free to
    // take the next run; one rank's alone leaves its teammates inside a collective for good.
    if (!dist::team_failed_together())
      dist::end_job_after_lone_failure("run " + plan.run_id + " failed", dist::team().rank(), dist::team().size());
    return RunState::kFailed;
  }
  if (writer) print_run_summary(plan.run_id, rows);
  return RunState::kCompleted;
}

}  // namespace ot::experiment
