// tests/unit/test_slurm.cpp: the torch-free Slurm pieces of `ot submit` and `ot status`:
// batch scripts rendered from the repository's templates (both modes, every option, quoting),
// bad options refused with their name, sbatch and squeue output parsed.
#include <gtest/gtest.h>

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
}

}  // namespace
