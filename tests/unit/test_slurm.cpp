// tests/unit/test_slurm.cpp: the torch-free Slurm pieces of `ot submit` and `ot status`:
// batch scripts rendered from the repository's templates (both modes, every option, quoting),
// bad options refused with their name, sbatch and squeue output parsed, and the rendered scripts
// run under bash with stand-ins for ot, srun and scontrol: which signals lead to a requeue.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "slurm/batch_script.h"
#include "test_support.h"
#include "util/error.h"

namespace {

using ot::slurm::SubmitOptions;
using ot::slurm::SweepJob;

const std::string kTemplates = std::string(OT_REPO_ROOT) + "/slurm";

SweepJob job() {
  SweepJob j;
  j.ot = "/opt/ot build/ot";
  j.sweep_file = "/home/me/my sweeps/it's.toml";
  j.work_dir = "/home/me";
  j.log_dir = "/home/me/results/x/slurm/logs";
  j.experiment = "fig 4";
  j.runs = 12;
  return j;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(SlurmScript, ArrayModeHasEveryOption) {
  SubmitOptions o;
  o.mode = "array";
  o.partition = "gpu";
  o.account = "proj1";
  o.qos = "high";
  o.time = "1-02:00:00";
  o.gpus_per_run = 2;
  o.cpus_per_rank = 8;
  o.throttle = 3;
  o.signal_seconds = 300;
  o.sets = {"finetune.lr=2e-5"};
  const std::string s = ot::slurm::render_batch_script(o, job(), kTemplates);
  EXPECT_TRUE(has(s, "#SBATCH --array=0-11%3\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --job-name=ot-fig_4\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --signal=B:USR1@300\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --requeue\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --open-mode=append\n")) << s;
  for (const char* line : {"--partition=gpu", "--account=proj1", "--qos=high", "--time=1-02:00:00", "--ntasks=2",
                           "--gpus-per-task=1", "--cpus-per-task=8", "--output=/home/me/results/x/slurm/logs/%A_%a.out"})
    EXPECT_TRUE(has(s, std::string("#SBATCH ") + line + "\n")) << line << "\n" << s;
  // Two ranks per run: srun starts them; paths with spaces and quotes survive the shell.
  EXPECT_TRUE(has(s, "srun --mpi=pmix '/opt/ot build/ot' run --sweep '/home/me/my sweeps/it'\\''s.toml' "
                     "--index \"$SLURM_ARRAY_TASK_ID\" --set 'finetune.lr=2e-5' &\n")) << s;
  EXPECT_TRUE(has(s, "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"")) << s;
  for (const char* p : {"@SWEEP@", "@OT@", "@SETS@", "@LAUNCH@", "@SBATCH_LINES@"}) EXPECT_FALSE(has(s, p)) << p;
}

TEST(SlurmScript, OneRankPerRunRunsOtDirectly) {
  SubmitOptions o;
  o.mode = "array";
  const std::string s = ot::slurm::render_batch_script(o, job(), kTemplates);
  EXPECT_TRUE(has(s, "\n'/opt/ot build/ot' run --sweep")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --array=0-11\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --signal=B:USR1@120\n")) << s;
  EXPECT_FALSE(has(s, "--partition")) << s;
  EXPECT_FALSE(has(s, "srun")) << s;
}

TEST(SlurmScript, AllocationModeRunsTheSweepDriver) {
  SubmitOptions o;
  o.mode = "allocation";
  o.nodes = 4;
  o.gpus_per_run = 4;
  o.time = "12:00:00";
  const std::string s = ot::slurm::render_batch_script(o, job(), kTemplates);
  EXPECT_TRUE(has(s, "#SBATCH --nodes=4\n")) << s;
  EXPECT_TRUE(has(s, "#SBATCH --ntasks=16\n")) << s;
  EXPECT_TRUE(has(s, "srun --mpi=pmix '/opt/ot build/ot' sweep '/home/me/my sweeps/it'\\''s.toml' --ranks-per-run 4 &\n")) << s;
  EXPECT_TRUE(has(s, "scontrol requeue \"$SLURM_JOB_ID\"")) << s;
  EXPECT_FALSE(has(s, "--array")) << s;
}

TEST(SlurmScript, BadOptionsNameTheOption) {
  auto msg = [](SubmitOptions o) {
    try {
      ot::slurm::validate(o);
    } catch (const ot::Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  SubmitOptions o;
  o.mode = "array";
  EXPECT_EQ(msg(o), "(accepted)");
  SubmitOptions bad = o;
  bad.mode = "batch";
  EXPECT_EQ(msg(bad), "--mode: expected array or allocation, got 'batch'");
  bad = o;
  bad.time = "2h";
  EXPECT_EQ(msg(bad), "--time: '2h' is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");
  bad = o;
  bad.nodes = 0;
  EXPECT_EQ(msg(bad), "--nodes: must be at least 1, got 0");
  bad = o;
  bad.mode = "allocation";
  bad.throttle = 2;
  EXPECT_EQ(msg(bad), "--throttle: only array jobs are throttled (--mode array)");
  bad = o;
  bad.gpus_per_run = 2;
  bad.ranks_per_run = 4;
  EXPECT_EQ(msg(bad), "--ranks-per-run 4 and --gpus-per-run 2 disagree: each rank of a run drives one GPU");
  bad = o;
  bad.sets = {"finetune.lr"};
  EXPECT_EQ(msg(bad), "--set: expected KEY=VALUE, got 'finetune.lr'");
  for (const char* t : {"30", "30:00", "4:00:00", "1-12", "1-12:30", "1-12:30:00"}) {
    SubmitOptions ok = o;
    ok.time = t;
    EXPECT_EQ(msg(ok), "(accepted)") << t;
  }
}

TEST(SlurmScript, TemplatePlaceholders) {
  EXPECT_EQ(ot::slurm::render_template("a @X@ b@@c", "t", {{"X", "1"}}), "a 1 b@c");
  try {
    ot::slurm::render_template("line\n@Y@\n", "my.sbatch.in", {{"X", "1"}});
    FAIL() << "unknown placeholder accepted";
  } catch (const ot::Error& e) {
    EXPECT_EQ(std::string(e.what()), "my.sbatch.in:2: unknown placeholder @Y@");
  }
  EXPECT_THROW(ot::slurm::render_template("@X\n@", "t", {{"X", "1"}}), ot::Error);
  EXPECT_EQ(ot::slurm::shell_quote("it's"), "'it'\\''s'");
}

TEST(SlurmParse, SbatchAndSqueueOutput) {
  EXPECT_EQ(ot::slurm::parse_sbatch_job_id("12345\n"), 12345);
  EXPECT_EQ(ot::slurm::parse_sbatch_job_id("12345;cluster\n"), 12345);
  EXPECT_EQ(ot::slurm::parse_sbatch_job_id("sbatch: warning: something\n77\n"), 77);
  EXPECT_THROW(ot::slurm::parse_sbatch_job_id("sbatch: error: invalid partition\n"), ot::Error);
  const auto q = ot::slurm::parse_squeue("12_3|RUNNING\n12_[4-6,9%2]|PENDING\n13|RUNNING\n");
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].job_id, 12);
  EXPECT_EQ(q[0].array_tasks, (std::vector<int64_t>{3}));
  EXPECT_EQ(q[0].state, "RUNNING");
  EXPECT_EQ(q[1].array_tasks, (std::vector<int64_t>{4, 5, 6, 9}));
  EXPECT_EQ(q[1].state, "PENDING");
  EXPECT_TRUE(q[2].array_tasks.empty());
  EXPECT_THROW(ot::slurm::parse_squeue("garbage\n"), ot::Error);
  for (const char* live : {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "SUSPENDED"})
    EXPECT_TRUE(ot::slurm::job_is_live(live)) << live;
  for (const char* ended : {"CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"})
    EXPECT_FALSE(ot::slurm::job_is_live(ended)) << ended;
}

// True once process `pid` catches both USR1 and TERM (bash has installed the script's traps).
bool catches_usr1_and_term(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigCgt:", 0) != 0) continue;
    const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
    return (mask >> (SIGUSR1 - 1) & 1) && (mask >> (SIGTERM - 1) & 1);
  }
  return false;
}

struct ScriptOutcome {
  int exit_code = -1;
  std::string scontrol;  // the arguments scontrol was called with, one call per line
};

// Renders the `mode` script around a stand-in ot that exits 75 on USR1 or TERM (as ot does once
// its state is saved), runs it with bash, delivers `sig` to the batch shell as Slurm would, and
// reports the script's exit code and its scontrol calls.
ScriptOutcome run_script_and_signal(const std::string& mode, int sig) {
  ot::test::TempDir d;
  auto exe = [&](const std::string& name, const std::string& body) {
    ot::test::write_file(d.file(name), "#!/bin/bash\n" + body);
    ::chmod(d.file(name).c_str(), 0755);
  };
  exe("ot", "trap 'exit 75' USR1 TERM\ntouch '" + d.file("started") + "'\nwhile :; do sleep 0.02; done\n");
  exe("srun", "shift\nexec \"$@\"\n");  // drops --mpi=pmix
  exe("scontrol", "echo \"$*\" >> '" + d.file("scontrol.log") + "'\n");
  SweepJob j = job();
  j.ot = d.file("ot");
  j.work_dir = d.path();
  SubmitOptions o;
  o.mode = mode;
  ot::test::write_file(d.file("job.sh"), ot::slurm::render_batch_script(o, j, kTemplates));

  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string path = d.path() + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    ::setenv("PATH", path.c_str(), 1);
    ::setenv("SLURM_ARRAY_JOB_ID", "7", 1);
    ::setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    ::setenv("SLURM_JOB_ID", "9", 1);
    ::execl("/bin/bash", "bash", d.file("job.sh").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ScriptOutcome r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(std::filesystem::exists(d.file("started")) && catches_usr1_and_term(pid))) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      ADD_FAILURE() << mode << " script did not start its ot or set its traps";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream log(d.file("scontrol.log"));
  std::stringstream ss;
  ss << log.rdbuf();
  r.scontrol = ss.str();
  return r;
}

TEST(SlurmScript, TimeLimitWarningRequeuesTheJob) {
  ScriptOutcome a = run_script_and_signal("array", SIGUSR1);
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.scontrol, "requeue 7_3\n");
  ScriptOutcome b = run_script_and_signal("allocation", SIGUSR1);
  EXPECT_EQ(b.exit_code, 0);
  EXPECT_EQ(b.scontrol, "requeue 9\n");
}

// TERM is scancel (the job must stay cancelled) or a preemption (Slurm requeues by itself):
// the state is saved, but the script does not requeue.
TEST(SlurmScript, TermSavesStateWithoutRequeueing) {
  for (const char* mode : {"array", "allocation"}) {
    ScriptOutcome r = run_script_and_signal(mode, SIGTERM);
    EXPECT_EQ(r.exit_code, 75) << mode;
    EXPECT_EQ(r.scontrol, "") << mode;
  }
}

}  // namespace
