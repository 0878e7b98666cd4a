// slurm/slurm_client.h: talking to Slurm through its commands (sbatch, squeue), and the
// submission records `ot submit` leaves in a sweep's results directory
// (results/<experiment>/slurm/<job-id>.json: mode, sweep file, run id per index, job id) so
// that `ot status` can tell which Slurm job holds which run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "slurm/batch_script.h"

namespace ot::slurm {

struct CommandResult {
  int exit_code = 0;   // 127: not found
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (looked up in PATH) with the arguments, no shell involved.
CommandResult run_command(const std::vector<std::string>& argv);

// sbatch --parsable SCRIPT; throws ot::Error with sbatch's own message on failure.
int64_t submit_script(const std::string& script_path);

// squeue's view of the given jobs (all array elements). Throws when squeue cannot answer.
std::vector<QueueEntry> query_queue(const std::vector<int64_t>& job_ids);

struct SubmissionRecord {
  int64_t job_id = 0;
  std::string mode, sweep_file, submitted_utc;
  std::vector<std::string> run_ids;  // by sweep index
};

// Written atomically; read back by read_submissions (oldest first). A malformed record is an
// error naming its file.
void write_submission(const std::string& results_dir, const SubmissionRecord& r);
std::vector<SubmissionRecord> read_submissions(const std::string& results_dir);

}  // namespace ot::slurm
