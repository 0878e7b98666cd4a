// `ot run`, `ot rerun` and `ot sweep` end to end on a real pretrained model (stories260K):
// the offsite recipe's five settings recorded in one HDF5 file with its resolved TOML, a rerun
// that reproduces every value bit for bit, a multiple-choice experiment on real task data, and
// a sweep killed with SIGKILL at several points and restarted until every run is completed
// exactly once with earlier results untouched.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "results/run_file.h"
#include "test_support.h"
#include "util/content_hash.h"
#include "util/fs.h"

namespace {

namespace fs = std::filesystem;
using ot::test::run_cli;
using ot::test::shared_path;
using ot::test::TempDir;
using ot::test::write_file;

class ExperimentRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string m = shared_path("data/models/stories260K/");
    auto r = run_cli("convert llama2c --checkpoint " + m + "stories260K.bin --tokenizer " + m + "tok512.bin --out " + p("full"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string text = ot::read_text_file(shared_path("data/corpora/tinyshakespeare/input.txt"));
    write_file(p("train.txt"), text.substr(0, 20000));
    write_file(p("valid.txt"), text.substr(20000, 4000));
    write_file(p("test.txt"), text.substr(24000, 4000));
    const std::string stories = ot::read_text_file(shared_path("data/corpora/tinystories/tinystories_train_head.txt"));
    write_file(p("owner.txt"), stories.substr(0, 20000));
    write_file(p("owner_valid.txt"), stories.substr(20000, 4000));
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string p(const std::string& name) { return dir_->file(name); }

  // A small offsite experiment on stories260K (5 blocks: 1-1-1 adapter/emulator).
  static std::string experiment(const std::string& name, const std::string& extra = "") {
    const std::string toml = R"(
[experiment]
name = ")" + name + R"("
recipe = "offsite"
results_dir = ")" + p("results") + R"("
work_dir = ")" + p("work") + R"("

[runtime]
threads = 1

[model]
path = ")" + p("full") + R"("

[data.owner]
path = ")" + p("owner.txt") + R"("
[data.owner_valid]
path = ")" + p("owner_valid.txt") + R"("
[data.train]
path = ")" + p("train.txt") + R"("
[data.valid]
path = ")" + p("valid.txt") + R"("
[data.heldout]
path = ")" + p("test.txt") + R"("

[emulator]
adapter = [1, 1]
layers = 1

[distill]
data = "owner"
eval_data = "owner_valid"
block_size = 64
batch_size = 4
max_steps = 6
lr = 2e-3
eval_every = 3

[finetune]
data = "train"
eval_data = "valid"
block_size = 64
batch_size = 4
max_steps = 6
lr = 3e-3
eval_every = 3

[full_finetune]
block_size = 64
batch_size = 4
max_steps = 4
lr = 1e-3

[eval]
data = ["heldout"]
block_size = 64
)" + extra;
    const std::string path = p(name + ".toml");
    write_file(path, toml);
    return path;
  }

  static ot::results::RunReader only_result(const std::string& name) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(p("results/" + name)))
      if (e.path().extension() == ".h5" && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
    EXPECT_EQ(files.size(), 1u);
    return ot::results::RunReader::open(files.at(0));
  }

  static TempDir* dir_;
};
TempDir* ExperimentRun::dir_ = nullptr;

TEST_F(ExperimentRun, OffsiteRecipeRecordsFiveSettingsAndRerunReproducesThem) {
  auto r = run_cli("run " + experiment("five") + " --set runtime.hash_files=true");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("| setting |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pattern on heldout perplexity"), std::string::npos) << r.out;
  ot::results::RunReader run = only_result("five");
  EXPECT_EQ(run.status(), ot::results::RunStatus::Completed);
  EXPECT_EQ(run.string_attribute("recipe"), "offsite");
  EXPECT_EQ(run.string_attribute("experiment"), "five");
  EXPECT_NE(run.string_attribute("config_toml").find("layers = 1"), std::string::npos);
  std::set<std::string> settings;
  for (const auto& row : run.eval()) {
    EXPECT_EQ(row.task, "heldout");
    if (row.metric == "perplexity") {
      settings.insert(row.setting);
      EXPECT_GT(row.value, 1.0);
    }
  }
  EXPECT_EQ(settings, (std::set<std::string>{"zs_full", "zs_emulator", "ft_emulator", "plugin", "ft_full"}));
  EXPECT_GT(run.curve("distill").rows(), 0u);
  EXPECT_GT(run.curve("finetune").rows(), 0u);
  EXPECT_GT(run.curve("full_finetune").rows(), 0u);
  // runtime.hash_files: the SHA-256 of the exchanged bundle and adapter, as written.
  std::vector<fs::path> run_dirs;
  for (const auto& e : fs::directory_iterator(p("work/runs/five"))) run_dirs.push_back(e.path());
  ASSERT_EQ(run_dirs.size(), 1u);
  EXPECT_EQ(run.string_attribute("bundle_sha256"), ot::directory_sha256((run_dirs[0] / "bundle").string()));
  EXPECT_EQ(run.string_attribute("adapter_sha256"), ot::directory_sha256((run_dirs[0] / "adapter").string()));

  // The rerun replays the stored configuration and reproduces every value exactly.
  auto rr = run_cli("rerun " + run.path());
  ASSERT_EQ(rr.exit_code, 0) << rr.err << rr.out;
  EXPECT_NE(rr.out.find("rerun: 15 evaluation value(s) identical"), std::string::npos) << rr.out;
  EXPECT_NE(rr.out.find(", 0 different"), std::string::npos) << rr.out;
  auto again = ot::results::RunReader::open(run.path().substr(0, run.path().size() - 3) + ".rerun.h5");
  EXPECT_EQ(again.string_attribute("config_toml"), run.string_attribute("config_toml"));
}

TEST_F(ExperimentRun, MultipleChoiceTaskEndToEnd) {
  const std::string root = shared_path("data/tasks");
  std::string toml = ot::read_text_file(experiment("arc"));
  // Fine-tune on ARC-Easy's real training file instead of text; evaluate the harness task.
  toml.replace(toml.find("[finetune]\ndata = \"train\"\neval_data = \"valid\""),
               std::string("[finetune]\ndata = \"train\"\neval_data = \"valid\"").size(),
               "[finetune]\ntask = \"arc_easy\"\ntask_root = \"" + root + "\"\nmax_eval_examples = 16");
  toml.replace(toml.find("[eval]\ndata = [\"heldout\"]"), std::string("[eval]\ndata = [\"heldout\"]").size(),
               "[eval]\nlimit = 24\nsettings = [\"zs_full\", \"zs_emulator\", \"ft_emulator\", \"plugin\"]");
  write_file(p("arc.toml"), toml);
  auto r = run_cli("run " + p("arc.toml"));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ot::results::RunReader run = only_result("arc");
  std::set<std::string> settings;
  for (const auto& row : run.eval()) {
    EXPECT_EQ(row.task, "arc_easy");
    if (row.metric == "acc") {
      settings.insert(row.setting);
      EXPECT_EQ(row.n, 24);
      EXPECT_GE(row.value, 0.0);
      EXPECT_LE(row.value, 1.0);
      EXPECT_GT(row.stderr_value, 0.0);
    }
  }
  EXPECT_EQ(settings, (std::set<std::string>{"zs_full", "zs_emulator", "ft_emulator", "plugin"}));
}

TEST_F(ExperimentRun, SweepKilledAnywhereEndsWithEveryRunCompletedOnce) {
  const std::string sweep = experiment("killed", "\n[sweep]\nseeds = [0, 1, 2]\n");
  auto plan = run_cli("sweep plan " + sweep);
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("3 run(s)"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("| pending |"), std::string::npos) << plan.out;

  // Start the sweep and SIGKILL it at growing delays, restarting each time, until it finishes.
  const std::string ot_bin = OT_CLI_PATH;
  std::map<std::string, std::string> first_completed;  // file -> bytes when first seen completed
  bool finished = false;
  // Eight kills at growing delays, then one run left to finish whatever is left.
  const int kills = 8;
  for (int attempt = 0; attempt <= kills && !finished; ++attempt) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::freopen("/dev/null", "w", stdout);
      ::freopen("/dev/null", "w", stderr);
      ::execl(ot_bin.c_str(), ot_bin.c_str(), "sweep", sweep.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500 + 900 * attempt);
    int status = 0;
    while (attempt == kills || std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        ASSERT_TRUE(finished) << "sweep exited with status " << status;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!finished) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    // A result once completed is never touched again.
    if (!fs::exists(p("results/killed"))) continue;  // killed before the first file appeared
    for (const auto& e : fs::directory_iterator(p("results/killed"))) {
      const std::string f = e.path().string();
      if (e.path().extension() != ".h5" || e.path().filename().string()[0] == '.') continue;
      if (!ot::results::run_is_complete(f)) continue;
      const std::string bytes = ot::read_text_file(f);
      auto [it, fresh] = first_completed.emplace(f, bytes);
      if (!fresh) {
        EXPECT_EQ(it->second, bytes) << f << " changed after it was completed";
      }
    }
  }
  ASSERT_TRUE(finished) << "the sweep did not finish";
  std::set<std::string> ids;
  int h5 = 0;
  for (const auto& e : fs::directory_iterator(p("results/killed"))) {
    if (e.path().extension() != ".h5") continue;
    ASSERT_NE(e.path().filename().string()[0], '.') << "leftover temporary file " << e.path();
    ++h5;
    auto run = ot::results::RunReader::open(e.path().string());
    EXPECT_EQ(run.status(), ot::results::RunStatus::Completed) << e.path();
    ids.insert(run.string_attribute("run_id"));
  }
  EXPECT_EQ(h5, 3);
  EXPECT_EQ(ids.size(), 3u);
  auto again = run_cli("sweep " + sweep);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("0 completed now, 3 already completed, 0 failed"), std::string::npos) << again.out;
}

// SIGUSR1 (Slurm's --signal=B:USR1@T) in the middle of adapter fine-tuning: ot saves its
// state and exits 75 with the result file still "running"; the next attempt skips the
// finished distillation, resumes fine-tuning from the saved step, and ends with evaluation
// values bit-identical to an uninterrupted run of the same configuration.
TEST_F(ExperimentRun, PreemptedRunContinuesToTheResultsOfAnUninterruptedOne) {
  const std::string extra = "\n[sweep]\nseeds = [7]\n";
  std::string toml = ot::read_text_file(experiment("preempt", extra));
  const std::string ft = "max_steps = 6\nlr = 3e-3\neval_every = 3";
  toml.replace(toml.find(ft), ft.size(), "max_steps = 150\nlr = 3e-4\neval_every = 50\nsave_every = 1");  // caught mid-way
  write_file(p("preempt.toml"), toml);
  std::string reference = toml;
  reference.replace(reference.find(p("results")), p("results").size(), p("results-reference"));
  reference.replace(reference.find(p("work")), p("work").size(), p("work-reference"));
  write_file(p("preempt-reference.toml"), reference);

  const std::string ot_bin = OT_CLI_PATH, file = p("preempt.toml");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::freopen(p("preempt.log").c_str(), "w", stderr);
    ::freopen("/dev/null", "w", stdout);
    ::execl(ot_bin.c_str(), ot_bin.c_str(), "run", "--sweep", file.c_str(), "--index", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until fine-tuning has written its state at least once, then preempt.
  bool signalled = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    // The run renames its stage folders as it goes: a listing may lose an entry mid-way.
    bool state = false;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p("work/runs/preempt"), ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      state = state || it->path().filename() == "finetune.state";
    if (state && !signalled) {
      ::kill(pid, SIGUSR1);
      signalled = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (signalled) ::waitpid(pid, &status, 0);
  ASSERT_TRUE(signalled) << "fine-tuning never wrote its state: " << ot::read_text_file(p("preempt.log"));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  ASSERT_EQ(WEXITSTATUS(status), 75) << ot::read_text_file(p("preempt.log"));
  ot::results::RunReader stopped = only_result("preempt");
  EXPECT_EQ(stopped.status(), ot::results::RunStatus::Running);
  EXPECT_TRUE(stopped.has_attribute("interrupted"));
  EXPECT_GT(stopped.curve("distill").rows(), 0u);

  auto second = run_cli("run --sweep " + file + " --index 0");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("distillation: done in an earlier attempt"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("finetune: resumed from"), std::string::npos) << second.err;
  auto third = run_cli("run --sweep " + file + " --index 0");  // --sweep skips a completed run
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(third.out.find("already completed"), std::string::npos) << third.out;

  auto ref = run_cli("run " + p("preempt-reference.toml"));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  ot::results::RunReader resumed = only_result("preempt");
  ot::results::RunReader uninterrupted = ot::results::RunReader::open(
      p("results-reference/preempt/") + resumed.string_attribute("run_id") + ".h5");
  EXPECT_EQ(resumed.status(), ot::results::RunStatus::Completed);
  EXPECT_EQ(resumed.int_attribute("attempts"), 2);
  ASSERT_EQ(resumed.eval().size(), uninterrupted.eval().size());
  ASSERT_FALSE(resumed.eval().empty());
  for (size_t i = 0; i < resumed.eval().size(); ++i) {
    EXPECT_EQ(resumed.eval()[i].setting, uninterrupted.eval()[i].setting);
    EXPECT_EQ(resumed.eval()[i].value, uninterrupted.eval()[i].value)
        << resumed.eval()[i].setting << " " << resumed.eval()[i].metric;
  }
  // The curves are those of one uninterrupted run: one row per step.
  const auto& steps = resumed.curve("finetune").column("step");
  ASSERT_EQ(steps.size(), 150u);
  for (size_t i = 0; i < steps.size(); ++i) ASSERT_EQ(steps[i], double(i + 1));
  EXPECT_EQ(resumed.curve("finetune").column("loss"), uninterrupted.curve("finetune").column("loss"));
}

TEST_F(ExperimentRun, BadInputsFailBeforeAnyWork) {
  auto missing = run_cli("run " + experiment("bad1", "").substr(0, 0) + p("nope.toml"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.toml: no such experiment file"), std::string::npos) << missing.err;
  std::string toml = ot::read_text_file(experiment("bad2"));
  toml.replace(toml.find(p("full")), p("full").size(), p("no-such-model"));
  write_file(p("bad2.toml"), toml);
  auto nomodel = run_cli("run " + p("bad2.toml"));
  EXPECT_EQ(nomodel.exit_code, 1);
  EXPECT_NE(nomodel.err.find("model.path: '" + p("no-such-model") + "' is not a checkpoint directory"), std::string::npos)
      << nomodel.err;
  auto zero = run_cli("sweep plan " + experiment("bad3", "\n[sweep.grid]\n\"finetune.lr\" = []\n"));
  EXPECT_EQ(zero.exit_code, 1);
  EXPECT_NE(zero.err.find("zero runs"), std::string::npos) << zero.err;
  auto typo = run_cli("run " + experiment("bad4") + " --set finetune.lrr=1");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.err.find("--set finetune.lrr=1: unknown key 'finetune.lrr' (did you mean 'lr'?)"), std::string::npos)
      << typo.err;
  auto fp16 = run_cli("run " + experiment("bad5") + " --set runtime.precision=fp16");
  EXPECT_EQ(fp16.exit_code, 1);
  EXPECT_NE(fp16.err.find("runtime.precision: fp16 mixed precision needs a CUDA device"), std::string::npos) << fp16.err;
  auto fp12 = run_cli("run " + experiment("bad6") + " --set runtime.precision=fp12");
  EXPECT_EQ(fp12.exit_code, 1);
  EXPECT_NE(fp12.err.find("runtime.precision"), std::string::npos) << fp12.err;
  EXPECT_NE(fp12.err.find("fp12"), std::string::npos) << fp12.err;
  auto negative = run_cli("run " + experiment("bad7") + " --set emulator.layers=-2");
  EXPECT_EQ(negative.exit_code, 1);
  EXPECT_NE(negative.err.find("emulator.layers: -2 is out of range (expected >= 0)"), std::string::npos) << negative.err;
  auto no_bundle = run_cli("run " + experiment("bad8") + " --set experiment.recipe=eval --set eval.adapter=" + p("full"));
  EXPECT_EQ(no_bundle.exit_code, 1);
  EXPECT_NE(no_bundle.err.find("eval.bundle"), std::string::npos) << no_bundle.err;
}

}  // namespace

namespace {

// A corpus in the Brown layout: cats.txt and tagged files, three genres of six files.
void write_fake_brown(const std::string& dir) {
  fs::create_directories(dir);
  const char* genres[] = {"news", "religion", "learned"};
  const char letters[] = {'a', 'd', 'j'};
  const char* words[] = {"the/at", "jury/nn", "said/vbd", "that/cs", "a/at", "study/nn", "of/in", "light/nn",
                         "shows/vbz", "faith/nn", "and/cc", "reason/nn", "grow/vb", "in/in", "time/nn", "./."};
  std::string cats;
  unsigned state = 7;
  for (int g = 0; g < 3; ++g)
    for (int f = 1; f <= 6; ++f) {
      const std::string name = std::string("c") + letters[g] + "0" + std::to_string(f);
      cats += name + " " + genres[g] + "\n";
      std::string text;
      for (int para = 0; para < 30; ++para) {
        text += "\n\n\t";
        for (int w = 0; w < 40; ++w) {
          state = state * 1103515245u + 12345u;
          text += std::string(words[(state >> 16) % (g == 2 ? 8 : 16)]) + " ";
        }
      }
      write_file(dir + "/" + name, text + "\n");
    }
  write_file(dir + "/cats.txt", cats);
}

}  // namespace

// The quickstart's pipeline on a reduced budget: Brown selections, a trained BPE, a pretrained
// (then cached) foundation model, and the five settings on the held-out genre's test files.
TEST_F(ExperimentRun, QuickstartPipelineOnAReducedBudget) {
  write_fake_brown(p("brown"));
  const std::vector<std::string> sets = {
      "experiment.results_dir=" + p("qs-results"), "experiment.work_dir=" + p("qs-work"), "runtime.threads=1",
      "tokenizer.vocab_size=300", "model.init.num_hidden_layers=4", "model.init.hidden_size=32",
      "model.init.ffn_dim=64", "model.init.word_embed_proj_dim=32", "model.init.num_attention_heads=2",
      "model.init.max_position_embeddings=32", "pretrain.block_size=32", "pretrain.max_steps=6",
      "pretrain.eval_every=3", "pretrain.save_every=2", "emulator.adapter=[1,1]", "emulator.layers=1",
      "distill.block_size=32", "distill.max_steps=4", "distill.eval_every=2", "finetune.block_size=32",
      "finetune.max_steps=4", "finetune.eval_every=2", "full_finetune.block_size=32", "full_finetune.max_steps=3",
      "eval.block_size=32", "sweep.seeds=[0,1]"};
  std::string args = "run " + ot::test::repo_root() + "/experiments/quickstart.toml";
  for (const auto& s : sets) args += " --set '" + s + "'";
  const std::string env = "OT_BROWN=" + p("brown") + " ";
  auto r = ot::test::run_cli_env(env, args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.err.find("-token byte-level BPE on data.owner"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model: pretrained"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model: cached foundation model"), std::string::npos) << r.err;  // the second seed
  // The second seed reads the foundation model's zero-shot scores from the first one's evaluation.
  EXPECT_NE(r.err.find("eval: zs_full scores of the cached foundation model"), std::string::npos) << r.err;
  int completed = 0;
  std::set<double> zs_full;  // one value: computed once, read back bit for bit
  for (const auto& e : fs::directory_iterator(p("qs-results/quickstart"))) {
    auto run = ot::results::RunReader::open(e.path().string());
    EXPECT_EQ(run.status(), ot::results::RunStatus::Completed);
    std::set<std::string> settings;
    for (const auto& row : run.eval())
      if (row.metric == "perplexity" && row.task == "j_test") {
        settings.insert(row.setting);
        if (row.setting == "zs_full") zs_full.insert(row.value);
      }
    EXPECT_EQ(settings.size(), 5u);
    ++completed;
  }
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(zs_full.size(), 1u);
  // A damaged score cache is said and evaluated again, with the same result.
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(p("qs-work")))
    if (e.path().extension() == ".json" && e.path().parent_path().extension() == ".scores") {
      write_file(e.path().string(), "[{\"task\": \"j_test\"");
      ++damaged;
    }
  EXPECT_EQ(damaged, 1);
  // A rerun finds the tokenizer and the foundation model cached, even with the corpus named
  // by another spelling of its path (the caches key on contents).
  auto again = ot::test::run_cli_env("OT_BROWN=" + p("brown") + "/. ", args + " --index 0");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("model: pretrained"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.find("byte-level BPE on"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find(".json: damaged ("), std::string::npos) << again.err;
  for (const auto& e : fs::directory_iterator(p("qs-results/quickstart"))) {
    const auto run = ot::results::RunReader::open(e.path().string());  // outlives the loop over its rows
    for (const auto& row : run.eval()) {
      if (row.setting == "zs_full" && row.metric == "perplexity") {
        EXPECT_EQ(row.value, *zs_full.begin());
      }
    }
  }
}
