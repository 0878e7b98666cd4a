// cli/submit.cpp: sweeps on Slurm.
//   ot submit SWEEP.toml --mode array|allocation [--partition P] [--nodes N] [--gpus-per-run G]
//             [--ranks-per-run R] [--time T] [--account A] [--qos Q] [--throttle K]
//             [--signal-seconds S] [--set KEY=VALUE]... [--dry-run]
//   ot status SWEEP.toml [--set KEY=VALUE]...
// `submit` plans the sweep (a bad file fails before anything is queued), renders the batch
// script (slurm/*.sbatch.in), submits it with `sbatch --parsable` and records the submission
// in the results directory; `status` lists every run's state from its result file and, for
// submitted sweeps, its Slurm job and state from squeue.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "experiment/config.h"
#include "experiment/sweep.h"
#include "results/run_file.h"
#include "results/run_state.h"
#include "slurm/batch_script.h"
#include "slurm/slurm_client.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/provenance.h"

namespace ot::cli {

namespace {

namespace fs = std::filesystem;

std::string self_executable() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  OT_REQUIRE(!ec, "cannot find the ot executable (/proc/self/exe): give --ot PATH");
  return p.string();
}

std::string results_dir_of(const std::vector<experiment::PlannedRun>& runs) {
  const std::string& f = runs.front().result_path;
  return f.substr(0, f.find_last_of('/'));
}

}  // namespace

void register_submit(CLI::App& app) {
  {
    struct Args {
      std::string file, ot, template_dir;
      slurm::SubmitOptions o;
      bool dry_run = false;
    };
    auto a = std::make_shared<Args>();
    a->o.mode = "array";
    CLI::App* cmd = app.add_subcommand("submit", "Submit a sweep to Slurm (job array or one allocation)");
    cmd->add_option("sweep", a->file, "sweep TOML file")->required();
    cmd->add_option("--mode", a->o.mode, "array: one run per array task; allocation: one job, srun ot sweep")
        ->capture_default_str();
    cmd->add_option("--partition", a->o.partition, "Slurm partition");
    cmd->add_option("--nodes", a->o.nodes, "nodes (allocation: of the whole job->check(at_least(1)); array: of each task)")->capture_default_str();
    cmd->add_option("--gpus-per-run", a->o.gpus_per_run, "GPUs per run (one per rank)")->capture_default_str()->check(at_least(0));
    cmd->add_option("--ranks-per-run", a->o.ranks_per_run, "data-parallel ranks per run (default: GPUs per run, or 1)")->check(at_least(1));
    cmd->add_option("--cpus-per-rank", a->o.cpus_per_rank, "CPUs per rank (--cpus-per-task)")->check(at_least(1));
    cmd->add_option("--time", a->o.time, "time limit, e.g. 4:00:00 or 1-12");
    cmd->add_option("--account", a->o.account, "Slurm account");
    cmd->add_option("--qos", a->o.qos, "Slurm quality of service");
    cmd->add_option("--throttle", a->o.throttle, "array: at most K tasks at once")->check(at_least(1));
    cmd->add_option("--signal-seconds", a->o.signal_seconds, "USR1 this many seconds before the time limit")
        ->capture_default_str()->check(at_least(0));
    cmd->add_option("--set", a->o.sets, "override a key in every run (repeatable)");
    cmd->add_option("--ot", a->ot, "ot executable the job runs (default: this one)");
    cmd->add_option("--template-dir", a->template_dir, "folder with array.sbatch.in and allocation.sbatch.in");
    cmd->add_flag("--dry-run", a->dry_run, "print the batch script; submit nothing");
    cmd->callback([a] {
      slurm::validate(a->o);
      const std::vector<experiment::PlannedRun> runs = experiment::plan_runs(experiment::load_config(a->file, a->o.sets));
      OT_REQUIRE(!runs.empty(), a->file, ": the sweep has no runs");
      slurm::SweepJob job;
      job.ot = a->ot.empty() ? self_executable() : fs::absolute(a->ot).string();
      job.sweep_file = fs::absolute(a->file).string();
      job.work_dir = fs::current_path().string();
      job.experiment = runs.front().config.str("experiment.name");
      job.runs = static_cast<int64_t>(runs.size());
      const std::string results = fs::absolute(results_dir_of(runs)).string();
      job.log_dir = path_join(path_join(results, "slurm"), "logs");
      std::string tdir = a->template_dir;
      if (tdir.empty()) {
        const char* env = std::getenv("OT_SLURM_DIR");
        tdir = env ? env : OT_SLURM_SOURCE_DIR;
      }
      const std::string script = slurm::render_batch_script(a->o, job, tdir);
      if (a->dry_run) {
        std::cout << script;
        return;
      }
      fs::create_directories(job.log_dir);
      const std::string script_path = path_join(path_join(results, "slurm"), job.experiment + "-" + a->o.mode + ".sbatch");
      write_text_file_atomically(script_path, script);
      const int64_t id = slurm::submit_script(script_path);
      slurm::SubmissionRecord rec;
      rec.job_id = id;
      rec.mode = a->o.mode;
      rec.sweep_file = job.sweep_file;
      rec.submitted_utc = utc_now_iso8601();
      for (const auto& r : runs) rec.run_ids.push_back(r.run_id);
      slurm::write_submission(results, rec);
      std::cout << "submitted job " << id << " (" << a->o.mode << ", " << runs.size() << " run(s)); script "
                << script_path << ", logs in " << job.log_dir << "\n";
    });
  }
  {
    struct Args {
      std::string file;
      std::vector<std::string> sets;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("status", "Per-run state of a sweep: result files and Slurm's queue");
    cmd->add_option("sweep", a->file, "sweep TOML file")->required();
    cmd->add_option("--set", a->sets, "override a key in every run (repeatable)");
    cmd->callback([a] {
      const std::vector<experiment::PlannedRun> runs = experiment::plan_runs(experiment::load_config(a->file, a->sets));
      OT_REQUIRE(!runs.empty(), a->file, ": the sweep has no runs");
      const std::string results = results_dir_of(runs);
      const std::vector<slurm::SubmissionRecord> subs = slurm::read_submissions(results);
      // run id -> (job, slurm state) from the latest submission that knows the run.
      std::map<std::string, std::pair<std::string, std::string>> slurm_of;
      std::string note;
      if (!subs.empty()) {
        std::vector<int64_t> ids;
        for (const auto& s : subs) ids.push_back(s.job_id);
        std::vector<slurm::QueueEntry> queue;
        try {
          queue = slurm::query_queue(ids);
        } catch (const std::exception& e) {
          note = std::string("Slurm not reachable (") + e.what() + "): states from the result files only";
        }
        for (const auto& s : subs) {
          for (const auto& q : queue) {
            if (q.job_id != s.job_id) continue;
            if (s.mode == "array") {
              for (int64_t t : q.array_tasks)
                if (t >= 0 && t < static_cast<int64_t>(s.run_ids.size()))
                  slurm_of[s.run_ids[static_cast<size_t>(t)]] = {std::to_string(s.job_id) + "_" + std::to_string(t), q.state};
            } else {
              for (const auto& id : s.run_ids) slurm_of[id] = {std::to_string(s.job_id), q.state};
            }
          }
        }
      }
      std::map<std::string, int> tally;
      std::cout << "| # | run id | state | slurm job | slurm state | parameters |\n|---|---|---|---|---|---|\n";
      for (size_t i = 0; i < runs.size(); ++i) {
        std::string state = results::run_state_of(runs[i].result_path);
        auto it = slurm_of.find(runs[i].run_id);
        const bool listed = it != slurm_of.end();  // squeue --states=all still lists ended jobs a while
        const bool queued = listed && slurm::job_is_live(it->second.second);
        if (queued && state == "pending") state = it->second.second == "PENDING" ? "queued" : "starting";
        // A file still saying "running" that no queued job holds was left by a job that is gone
        // (scancel, a node failure, the time limit reached without a requeue).
        bool submitted = false;
        for (const auto& sub : subs)
          submitted = submitted || std::find(sub.run_ids.begin(), sub.run_ids.end(), runs[i].run_id) != sub.run_ids.end();
        if (!queued && submitted && note.empty() && state == "running") state = "stopped";
        ++tally[state];
        std::string params;
        for (const auto& [k, v] : runs[i].params) params += (params.empty() ? "" : " ") + k + "=" + v;
        std::cout << "| " << i << " | " << runs[i].run_id << " | " << state << " | " << (listed ? it->second.first : "")
                  << " | " << (listed ? it->second.second : "") << " | " << params << " |\n";
      }
      std::cout << runs.size() << " run(s):";
      for (const auto& [s, n] : tally) std::cout << " " << n << " " << s;
      std::cout << "\n";
      if (tally.count("stopped") || tally.count("interrupted"))
        std::cout << "stopped/interrupted runs continue from their saved state when the sweep is submitted or run again\n";
      if (!note.empty()) std::cerr << "note: " << note << "\n";
    });
  }
}

}  // namespace ot::cli
