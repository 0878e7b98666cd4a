// cli/run.cpp: experiments from TOML.
//   ot run EXPERIMENT.toml [--set KEY=VALUE]... [--index I] [--print-config]
//   ot run --sweep SWEEP.toml --index I       (one Slurm array task)
//   ot rerun RESULT.h5 [--out FILE]
//   ot sweep plan SWEEP.toml [--set ...]
//   ot sweep SWEEP.toml [--set ...] [--ranks-per-run G]
// `run` runs one experiment (every run of a file with a [sweep], or only run I); with
// --sweep a completed run is skipped. `sweep` runs a sweep's runs, skipping those whose
// result file is complete; under an MPI launcher with --ranks-per-run, teams of G ranks
// take runs from a queue (experiment/team_sweep.h). A run interrupted by a signal is
// continued by the next attempt. `rerun` replays the configuration stored in a result
// file and compares results.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "dist/context.h"
#include "dist/mpi_runtime.h"
#include "experiment/config.h"
#include "experiment/runner.h"
#include "experiment/schema.h"
#include "experiment/sweep.h"
#include "experiment/team_sweep.h"
#include "results/run_file.h"
#include "results/run_state.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/signals.h"

namespace ot::cli {

namespace {

using experiment::PlannedRun;
using experiment::RunState;

std::string describe(const PlannedRun& r) {
  std::string s;
  for (const auto& [k, v] : r.params) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s.empty() ? "(no sweep)" : s;
}

struct Tally {
  int completed = 0, skipped = 0, failed = 0, taken = 0;
};

// Runs `runs` in order; returns the exit code.
// Runs `runs` in order on the current team (one process, or the MPI world as one
// data-parallel team); returns the exit code.
int run_all(const std::vector<PlannedRun>& runs, const std::string& command_line, bool skip_complete) {
  install_stop_signals();
  const bool console = dist::is_writer();
  Tally t;
  for (size_t i = 0; i < runs.size(); ++i) {
    const PlannedRun& r = runs[i];
    // Rank 0's view of the file decides for the team.
    const bool complete = skip_complete && dist::host_communicator().all_reduce_max(
                                               dist::is_writer() && results::run_is_complete(r.result_path) ? 1.0 : 0.0) > 0;
    if (complete) {
      if (console)
        std::cout << "[" << i + 1 << "/" << runs.size() << "] " << r.run_id << " " << describe(r)
                  << ": already completed (" << r.result_path << ")\n";
      ++t.skipped;
      continue;
    }
    if (stop_requested()) {
      std::cerr << "ot: stopped by a signal before run " << r.run_id << "; run the same command again to continue\n";
      return kExitPreempted;
    }
    if (console)
      std::cout << "[" << i + 1 << "/" << runs.size() << "] " << r.run_id << " " << describe(r) << " -> "
                << r.result_path << std::endl;
    experiment::RunOptions o;
    o.command_line = command_line;
    o.skip_complete = skip_complete;
    const RunState s = experiment::execute_run(r, o);
    if (s == RunState::kClaimed) {  // another process runs it (or just completed it): not ours to count
      ++t.taken;
      continue;
    }
    if (s == RunState::kPreempted) {
      if (console) std::cerr << "ot: stopped by a signal; run the same command again to continue\n";
      return kExitPreempted;
    }
    if (s == RunState::kCompleted) ++t.completed;
    else ++t.failed;
  }
  if (console)
    std::cout << runs.size() << " run(s): " << t.completed << " completed now, " << t.skipped << " already completed, "
              << t.failed << " failed" << (t.taken ? ", " + std::to_string(t.taken) + " left to another process" : std::string()) << "\n";
  return t.failed > 0 ? 1 : 0;
}

std::string joined(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

void print_plan(const std::vector<PlannedRun>& runs) {
  std::cout << "| # | run id | state | parameters |\n|---|---|---|---|\n";
  for (size_t i = 0; i < runs.size(); ++i)
    std::cout << "| " << i << " | " << runs[i].run_id << " | " << results::run_state_of(runs[i].result_path) << " | "
              << describe(runs[i]) << " |\n";
  std::cout << runs.size() << " run(s); results in "
            << (runs.empty() ? "" : runs.front().result_path.substr(0, runs.front().result_path.find_last_of('/')))
            << "\n";
}

// Compares the evaluation rows of two result files; prints the differences.
void compare_results(const std::string& original, const std::string& rerun) {
  results::RunReader a = results::RunReader::open(original), b = results::RunReader::open(rerun);
  size_t same = 0, differ = 0;
  for (const results::EvalRow& ra : a.eval()) {
    for (const results::EvalRow& rb : b.eval()) {
      if (ra.setting != rb.setting || ra.task != rb.task || ra.metric != rb.metric) continue;
      if (ra.value == rb.value) {
        ++same;
      } else {
        ++differ;
        std::cout << "  differs: " << ra.setting << " " << ra.task << " " << ra.metric << ": " << std::setprecision(10)
                  << ra.value << " -> " << rb.value << "\n";
      }
    }
  }
  std::cout << "rerun: " << same << " evaluation value(s) identical to " << original << ", " << differ << " different\n";
}

}  // namespace

void register_run_commands(CLI::App& app, int argc, char** argv) {
  const std::string cmdline = joined(argc, argv);
  {
    struct Args {
      std::string file;
      std::vector<std::string> sets;
      std::string sweep;
      int64_t index = -1;
      bool print_config = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("run", "Run an experiment from TOML (all runs of its [sweep], or --index I)");
    cmd->add_option("experiment", a->file, "experiment TOML file");
    cmd->add_option("--sweep", a->sweep, "sweep TOML file: like EXPERIMENT, but a completed run is skipped "
                                         "(Slurm array tasks: --sweep SWEEP.toml --index $SLURM_ARRAY_TASK_ID)");
    cmd->add_option("--set", a->sets, "override a key: --set finetune.lr=2e-5 (repeatable)");
    cmd->add_option("--index", a->index, "run only run I of the file's sweep (see `ot sweep plan`)")->check(at_least(0));
    cmd->add_flag("--print-config", a->print_config, "print the resolved configuration(s) and exit");
    cmd->callback([a, cmdline] {
      OT_REQUIRE(a->file.empty() != a->sweep.empty(), "ot run: give an experiment file, or --sweep SWEEP.toml (not both)");
      const bool skip_complete = !a->sweep.empty();
      if (skip_complete) a->file = a->sweep;
      experiment::Config c = experiment::load_config(a->file, a->sets);
      std::vector<PlannedRun> runs = experiment::plan_runs(c);
      if (a->index >= 0) {
        OT_REQUIRE(a->index < static_cast<int64_t>(runs.size()), "--index ", a->index, ": ", a->file, " has ",
                   runs.size(), " run(s) (0 to ", runs.size() - 1, ")");
        runs = {runs[static_cast<size_t>(a->index)]};
      }
      if (a->print_config) {
        for (const PlannedRun& r : runs) std::cout << "# run " << r.run_id << "\n" << r.config.to_toml() << "\n";
        return;
      }
      const int code = run_all(runs, cmdline, skip_complete);
      if (code != 0) std::exit(code);
    });
  }
  app.add_subcommand("schema", "Print every key an experiment TOML may hold (Markdown)")->callback([] {
    std::cout << "# Experiment TOML keys\n\nGenerated by `ot schema`.\n\n" << experiment::schema_reference();
  });
  {
    struct Args {
      std::string file, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("rerun", "Run again exactly the configuration stored in a result file");
    cmd->add_option("result", a->file, "result file (.h5) written by ot run or ot sweep")->required();
    cmd->add_option("--out", a->out, "result file of the rerun (default: RESULT with .rerun.h5)");
    cmd->callback([a, cmdline] {
      results::RunReader r = results::RunReader::open(a->file);
      OT_REQUIRE(!r.string_attribute("config_toml").empty(), a->file,
                 ": stores no configuration (it was not written by ot run or ot sweep)");
      experiment::Config c = experiment::config_from_text(r.string_attribute("config_toml"), a->file + " config_toml");
      std::vector<PlannedRun> runs = experiment::plan_runs(c);
      OT_REQUIRE(runs.size() == 1, a->file, ": stored configuration expands to ", runs.size(), " runs");
      PlannedRun& run = runs.front();
      if (run.run_id != r.string_attribute("run_id"))
        std::cerr << "note: the stored configuration now has run id " << run.run_id << " (the file says "
                  << r.string_attribute("run_id") << "): defaults of this version differ\n";
      std::string out = a->out;
      if (out.empty()) {  // RESULT.h5 -> RESULT.rerun.h5
        const bool h5 = a->file.size() > 3 && a->file.compare(a->file.size() - 3, 3, ".h5") == 0;
        out = (h5 ? a->file.substr(0, a->file.size() - 3) : a->file) + ".rerun.h5";
      }
      OT_REQUIRE(out != a->file, "--out: the rerun must not overwrite the original result ", a->file);
      run.result_path = out;
      const int code = run_all(runs, cmdline, false);
      if (code == 0) compare_results(a->file, out);
      if (code != 0) std::exit(code);
    });
  }
  {
    struct Args {
      std::string file;
      std::vector<std::string> sets;
      int ranks_per_run = 0;
    };
    auto a = std::make_shared<Args>();
    auto p = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("sweep", "Run a sweep: every run of SWEEP.toml not yet completed");
    cmd->add_option("sweep", a->file, "sweep TOML file");
    cmd->add_option("--set", a->sets, "override a key in every run (repeatable)");
    cmd->add_option("--ranks-per-run", a->ranks_per_run,
                    "under mpirun/srun: teams of G ranks take runs from a queue, each run data-parallel on its team "
                    "(default: the whole world is one team)")->check(at_least(1));
    CLI::App* plan = cmd->add_subcommand("plan", "List the runs of a sweep with their ids and states");
    plan->add_option("sweep", p->file, "sweep TOML file")->required();
    plan->add_option("--set", p->sets, "override a key in every run (repeatable)");
    plan->callback([p] { print_plan(experiment::plan_runs(experiment::load_config(p->file, p->sets))); });
    cmd->callback([a, cmd, cmdline] {
      if (cmd->got_subcommand("plan")) return;
      OT_REQUIRE(!a->file.empty(), "ot sweep: give a sweep file (ot sweep SWEEP.toml, or ot sweep plan SWEEP.toml)");
      std::vector<PlannedRun> runs = experiment::plan_runs(experiment::load_config(a->file, a->sets));
      int code = 0;
      if (a->ranks_per_run > 0) {
        OT_REQUIRE(dist::mpi_initialized(), "--ranks-per-run: start ot with an MPI launcher (mpirun -np N ot sweep ..., "
                                            "or srun --mpi=pmix ot sweep ...)");
        code = experiment::run_sweep_in_teams(runs, a->ranks_per_run, cmdline);
      } else {
        code = run_all(runs, cmdline, true);
      }
      if (code != 0) std::exit(code);
    });
  }
}

}  // namespace ot::cli
