// slurm/batch_script.h: Slurm batch scripts for sweeps, rendered from the templates in the
// repository's slurm/ folder (slurm/array.sbatch.in, slurm/allocation.sbatch.in):
//   array       one run per array task: `ot run --sweep SWEEP --index $SLURM_ARRAY_TASK_ID`
//   allocation  one job: `srun --mpi=pmix ot sweep SWEEP --ranks-per-run R`
// Both requeue themselves after a USR1 (time limit or preemption) that made ot save its state.
// Torch-free: `ot submit` (cli/submit.cpp) and its tests use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ot::slurm {

struct SubmitOptions {
  std::string mode;                 // "array" | "allocation"
  std::string partition, account, qos;
  std::string time;                 // Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
  int64_t nodes = 1;
  int64_t gpus_per_run = 0;         // GPUs per run (each rank of a run gets one)
  int64_t ranks_per_run = 0;        // 0: gpus_per_run, or 1 without GPUs
  int64_t cpus_per_rank = 0;        // 0: Slurm's default
  int64_t throttle = 0;             // array: at most K tasks at once (`%K`); 0: no limit
  int64_t signal_seconds = 120;     // USR1 this long before the time limit
  std::vector<std::string> sets;    // --set KEY=VALUE passed to every run
};

// What the script runs: absolute paths, and the sweep's shape.
struct SweepJob {
  std::string ot;           // the ot executable
  std::string sweep_file;   // the sweep TOML
  std::string work_dir;     // directory the job starts in (relative paths in the TOML resolve there)
  std::string log_dir;      // where Slurm writes the job's output
  std::string experiment;   // experiment.name
  int64_t runs = 0;         // planned runs (array indices 0 .. runs-1)
};

// Throws ot::Error naming the option when a value is impossible (unknown mode, zero ranks,
// a time limit Slurm would reject, ...).
void validate(const SubmitOptions& o);
int64_t ranks_per_run(const SubmitOptions& o);
// Ranks of the whole allocation (allocation mode): nodes x per-node tasks, a multiple of the team size.
int64_t allocation_ranks(const SubmitOptions& o);

// Substitutes @NAME@ placeholders of `template_text`; `@@` is a literal '@'. An unknown or
// unterminated placeholder is an error naming `template_name` and the line.
std::string render_template(const std::string& template_text, const std::string& template_name,
                            const std::vector<std::pair<std::string, std::string>>& values);

// The batch script for `job`, from the mode's template file in `template_dir`.
std::string render_batch_script(const SubmitOptions& o, const SweepJob& job, const std::string& template_dir);

// Single-quotes a word for bash ('a b' -> 'a b', it's -> 'it'\''s').
std::string shell_quote(const std::string& word);

// The job id in `sbatch --parsable` output ("12345" or "12345;cluster").
int64_t parse_sbatch_job_id(const std::string& output);

// One line of `squeue -h -o "%i|%T"`: job "12345_7" (array task 7), "12345_[3-5,9%2]" (pending
// tasks), or "12345" (a whole job).
struct QueueEntry {
  int64_t job_id = 0;
  std::vector<int64_t> array_tasks;  // empty: not an array element
  std::string state;                 // PENDING, RUNNING, ...
};
std::vector<QueueEntry> parse_squeue(const std::string& output);
// Whether a job in this squeue state still holds its runs (pending, running, requeued, ...);
// `squeue --states=all` also lists jobs that ended (CANCELLED, FAILED, TIMEOUT, ...) for a while.
bool job_is_live(const std::string& state);

}  // namespace ot::slurm
