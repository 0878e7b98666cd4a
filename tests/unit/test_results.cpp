// tests/unit/test_results.cpp: the per-run HDF5 result file: exact round trip, incomplete
// and failed runs, crash safety under SIGKILL, schema-version and corrupt-file errors, and
// (when the system has it) reading a file with h5py.
#include <H5Cpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "results/run_file.h"
#include "test_support.h"
#include "util/error.h"

namespace ot::results {
namespace {

using ot::test::TempDir;

// Bitwise equality, so NaN, -0.0 and denormals count as "read back exactly".
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

RunInfo sample_info() {
  RunInfo info;
  info.run_id = "opt-125m_lora_seed1";
  info.experiment = "table2";
  info.config_toml = "[model]\nname = \"opt-125m\"\n# comment with UTF-8: é ✓ 日本語\n";
  info.command_line = "ot train --config runs/table2.toml";
  info.libtorch_version = "1.13.0";
  info.world_size = 4;
  return info;
}

using ot::test::expect_error;

TEST(Results, RoundTripsEverythingExactly) {
  TempDir dir;
  std::string path = dir.file("table2/run.h5");  // parent directory created by the recorder
  const std::vector<double> odd = {0.1,
                                   1.0 / 3.0,
                                   -0.0,
                                   4.9e-324,
                                   std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN(),
                                   1e308};
  {
    RunRecorder rec(path, sample_info());
    rec.set_attribute("seed", 7);
    rec.set_attribute("lr", 3e-4);
    rec.set_attribute("method", "offsite-tuning ✓");
    rec.set_attribute("seed", 8);  // replaces
    for (std::size_t i = 0; i < odd.size(); ++i) {
      rec.add_curve_row("distill", {{"step", double(i)}, {"loss", odd[i]}, {"lr", 1e-4}});
    }
    for (int i = 0; i < 3; ++i) {
      rec.add_curve_row("finetune", {{"step", i * 10}, {"loss", 2.0 - i}, {"tokens_per_s", 1e3}});
    }
    rec.add_eval({"emulator_zeroshot", "piqa", "acc", 0.6175, 0.0113, 1838});
    rec.add_eval({"plugin_finetuned", "arc_easy ✓", "acc_norm", 1.0 / 3.0, 0.0, 2376});
    rec.set_efficiency("tokens_per_s", 1234.5, "tokens/s");
    rec.set_efficiency("peak_memory_mb", 900, "MB");
    rec.set_efficiency("tokens_per_s", 1300.25, "tokens/s");  // replaces
    rec.set_efficiency("trainable_params", 7077888, "count");
    rec.set_rank_throughput(1, 640.5);
    rec.set_rank_throughput(0, 659.75);
    rec.complete();
    EXPECT_EQ(rec.status(), RunStatus::Completed);
  }

  RunReader r = RunReader::open(path);
  EXPECT_EQ(r.schema_version(), kSchemaVersion);
  EXPECT_EQ(r.status(), RunStatus::Completed);
  EXPECT_EQ(r.error(), "");
  RunInfo info = sample_info();
  EXPECT_EQ(r.string_attribute("run_id"), info.run_id);
  EXPECT_EQ(r.string_attribute("experiment"), info.experiment);
  EXPECT_EQ(r.string_attribute("config_toml"), info.config_toml);
  EXPECT_EQ(r.string_attribute("command_line"), info.command_line);
  EXPECT_EQ(r.string_attribute("libtorch_version"), "1.13.0");
  EXPECT_EQ(r.string_attribute("status"), "completed");
  EXPECT_EQ(r.int_attribute("world_size"), 4);
  EXPECT_FALSE(r.string_attribute("host").empty());
  EXPECT_FALSE(r.string_attribute("git_commit").empty());
  EXPECT_FALSE(r.string_attribute("offsite_version").empty());
  EXPECT_EQ(r.string_attribute("hdf5_version").rfind("1.", 0), 0u);
  for (const char* t : {"created_utc", "updated_utc"}) {
    const std::string& s = r.string_attribute(t);
    ASSERT_EQ(s.size(), 20u) << s;
    EXPECT_EQ(s[4], '-');
    EXPECT_EQ(s[10], 'T');
    EXPECT_EQ(s.back(), 'Z');
  }
  EXPECT_EQ(r.int_attribute("seed"), 8);
  EXPECT_TRUE(same_bits(r.double_attribute("lr"), 3e-4));
  EXPECT_EQ(r.string_attribute("method"), "offsite-tuning ✓");
  EXPECT_EQ(r.double_attribute("seed"), 8.0);  // integers widen on request
  expect_error([&] { r.int_attribute("lr"); }, {path, "'lr'", "integer"});
  expect_error([&] { r.string_attribute("nope"); }, {path, "'nope'", "missing"});

  ASSERT_EQ(r.curves().size(), 2u);
  const Curve& d = r.curve("distill");
  EXPECT_EQ(d.columns, (std::vector<std::string>{"step", "loss", "lr"}));
  ASSERT_EQ(d.rows(), odd.size());
  for (std::size_t i = 0; i < odd.size(); ++i) {
    EXPECT_TRUE(same_bits(d.column("loss")[i], odd[i])) << i;
    EXPECT_EQ(d.column("step")[i], double(i));
    EXPECT_TRUE(same_bits(d.column("lr")[i], 1e-4));
  }
  const Curve& f = r.curve("finetune");
  EXPECT_EQ(f.columns, (std::vector<std::string>{"step", "loss", "tokens_per_s"}));
  EXPECT_EQ(f.column("step"), (std::vector<double>{0, 10, 20}));
  EXPECT_EQ(f.column("loss"), (std::vector<double>{2, 1, 0}));
  expect_error([&] { r.curve("pretrain"); }, {path, "pretrain", "distill, finetune"});
  expect_error([&] { f.column("acc"); }, {"'acc'", "step, loss, tokens_per_s"});

  ASSERT_EQ(r.eval().size(), 2u);
  EXPECT_EQ(r.eval()[0].setting, "emulator_zeroshot");
  EXPECT_EQ(r.eval()[0].task, "piqa");
  EXPECT_EQ(r.eval()[0].metric, "acc");
  EXPECT_TRUE(same_bits(r.eval()[0].value, 0.6175));
  EXPECT_TRUE(same_bits(r.eval()[0].stderr_value, 0.0113));
  EXPECT_EQ(r.eval()[0].n, 1838);
  EXPECT_EQ(r.eval()[1].task, "arc_easy ✓");
  EXPECT_TRUE(same_bits(r.eval()[1].value, 1.0 / 3.0));
  EXPECT_EQ(r.eval()[1].n, 2376);

  ASSERT_EQ(r.efficiency().size(), 3u);
  EXPECT_EQ(r.efficiency()[0].name, "tokens_per_s");
  EXPECT_EQ(r.efficiency()[0].unit, "tokens/s");
  EXPECT_TRUE(same_bits(r.efficiency_value("tokens_per_s"), 1300.25));
  EXPECT_EQ(r.efficiency_value("trainable_params"), 7077888.0);
  EXPECT_EQ(r.efficiency()[1].unit, "MB");
  expect_error([&] { r.efficiency_value("flops_per_token"); }, {path, "flops_per_token"});

  ASSERT_EQ(r.ranks().size(), 2u);
  EXPECT_EQ(r.ranks()[0].rank, 0);
  EXPECT_EQ(r.ranks()[0].tokens_per_s, 659.75);
  EXPECT_EQ(r.ranks()[1].rank, 1);
  EXPECT_EQ(r.ranks()[1].tokens_per_s, 640.5);

  EXPECT_TRUE(run_is_complete(path));
  // No temporary siblings are left behind by a clean run.
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("table2"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST(Results, CurveColumnsAreFixedByTheFirstRow) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  RunRecorder rec(path, sample_info());
  rec.add_curve_row("distill", {{"step", 1}, {"loss", 2.0}});
  rec.add_curve_row("distill", {{"loss", 1.5}, {"step", 2}});  // same columns, other order
  expect_error([&] { rec.add_curve_row("distill", {{"step", 3}, {"loss", 1.0}, {"lr", 0.1}}); },
               {path, "curve 'distill'", "step, loss, lr", "(step, loss)"});
  expect_error([&] { rec.add_curve_row("distill", {{"step", 3}}); }, {"curve 'distill'"});
  expect_error([&] { rec.add_curve_row("distill", {{"step", 3}, {"step", 4}}); },
               {"curve 'distill'"});
  expect_error([&] { rec.add_curve_row("other", {{"a", 1}, {"a", 2}}); },
               {"curve 'other'", "'a' appears twice"});
  expect_error([&] { rec.add_curve_row("bad/name", {{"a", 1}}); }, {"'bad/name'"});
  expect_error([&] { rec.add_curve_row("ok", {{"", 1}}); }, {"column name"});
  expect_error([&] { rec.add_curve_row("empty", {}); }, {"curve 'empty'", "at least one"});
  rec.complete();

  RunReader r = RunReader::open(path);
  ASSERT_EQ(r.curves().size(), 1u);  // the rejected rows created nothing
  EXPECT_EQ(r.curve("distill").column("step"), (std::vector<double>{1, 2}));
  EXPECT_EQ(r.curve("distill").column("loss"), (std::vector<double>{2.0, 1.5}));
}

TEST(Results, RunRecorderRefusesSchemaAttributesAndLateRecords) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  RunRecorder rec(path, sample_info());
  expect_error([&] { rec.set_attribute("status", "completed"); }, {path, "'status'", "schema"});
  expect_error([&] { rec.set_attribute("schema_version", 2); }, {"'schema_version'"});
  expect_error([&] { rec.set_attribute("note", std::string("a\0b", 3)); }, {"NUL"});
  expect_error([&] { rec.set_flush_interval_seconds(-1); }, {"flush interval"});
  rec.complete();
  expect_error([&] { rec.add_curve_row("c", {{"a", 1}}); }, {path, "already marked completed"});
  expect_error([&] { rec.add_eval({"s", "t", "m", 1, 0, 1}); }, {"already marked completed"});
  expect_error([&] { rec.fail("late"); }, {"already marked completed"});
  EXPECT_TRUE(run_is_complete(path));
}

TEST(Results, RunDroppedWithoutCompleteStaysRunning) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  {
    RunRecorder rec(path, sample_info());
    EXPECT_EQ(rec.flush_interval_seconds(), 10.0);
    // Within the default 10 s interval rows stay in memory...
    rec.add_curve_row("pretrain", {{"step", 1}, {"loss", 9.0}});
    rec.add_curve_row("pretrain", {{"step", 2}, {"loss", 8.0}});
    EXPECT_EQ(rec.flush_count(), 1u);  // only the initial file
    EXPECT_EQ(RunReader::open(path).curves().size(), 0u);
    EXPECT_EQ(RunReader::open(path).status(), RunStatus::Running);
    // ...an eval row always flushes.
    rec.add_eval({"emulator_zeroshot", "piqa", "acc", 0.5, 0.01, 10});
    EXPECT_EQ(rec.flush_count(), 2u);
    EXPECT_EQ(RunReader::open(path).curve("pretrain").rows(), 2u);
    rec.add_curve_row("pretrain", {{"step", 3}, {"loss", 7.0}});
  }  // destroyed without complete(): pending rows are written, status stays "running"
  RunReader r = RunReader::open(path);
  EXPECT_EQ(r.status(), RunStatus::Running);
  EXPECT_EQ(r.string_attribute("status"), "running");
  EXPECT_EQ(r.curve("pretrain").rows(), 3u);
  EXPECT_EQ(r.eval().size(), 1u);
  EXPECT_FALSE(run_is_complete(path));
}

// A continued run evaluates again what its killed attempt had recorded: the row is replaced in
// its place, not repeated.
TEST(Results, EvalRowOfTheSameKeyIsReplaced) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  RunRecorder rec(path, sample_info());
  rec.add_eval({"zs_full", "heldout", "perplexity", 265.7, 0, 7});
  rec.add_eval({"zs_full", "heldout", "loss", 5.58, 0, 7});
  rec.add_eval({"zs_full", "heldout", "perplexity", 265.8, 0, 7});
  const std::vector<EvalRow> rows = RunReader::open(path).eval();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].metric, "perplexity");
  EXPECT_EQ(rows[0].value, 265.8);
  EXPECT_EQ(rows[1].metric, "loss");
}

TEST(Results, FlushIntervalZeroWritesEveryRow) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  RunRecorder rec(path, sample_info());
  rec.set_flush_interval_seconds(0);
  for (int i = 0; i < 5; ++i) {
    rec.add_curve_row("distill", {{"step", i}, {"loss", 1.0}});
    EXPECT_EQ(RunReader::open(path).curve("distill").rows(), std::size_t(i + 1));
  }
  EXPECT_EQ(rec.flush_count(), 6u);
  rec.set_efficiency("tokens_per_s", 10, "tokens/s");  // written on the next flush
  EXPECT_TRUE(RunReader::open(path).efficiency().empty());
  rec.flush();
  EXPECT_EQ(RunReader::open(path).efficiency_value("tokens_per_s"), 10.0);
}

TEST(Results, FailedRunRecordsTheError) {
  TempDir dir;
  std::string path = dir.file("run.h5");
  RunRecorder rec(path, sample_info());
  rec.add_curve_row("finetune", {{"step", 1}, {"loss", 3.0}});
  rec.fail("loss became NaN at step 1 (ε ✗)");
  EXPECT_EQ(rec.status(), RunStatus::Failed);
  RunReader r = RunReader::open(path);
  EXPECT_EQ(r.status(), RunStatus::Failed);
  EXPECT_EQ(r.error(), "loss became NaN at step 1 (ε ✗)");
  EXPECT_EQ(r.string_attribute("status"), "failed");
  EXPECT_EQ(r.curve("finetune").rows(), 1u);
  EXPECT_FALSE(run_is_complete(path));
  expect_error([&] { rec.complete(); }, {"already marked failed"});
}

// A child process appends rows with a flush after every row (so SIGKILL almost surely
// lands inside a write); the file left behind must be the last complete flush.
TEST(Results, RunKilledMidWriteLeavesReadableIncompleteFile) {
  TempDir dir;
  const std::array<int, 5> delays_ms = {40, 150, 300, 320, 480};
  for (std::size_t k = 0; k < delays_ms.size(); ++k) {
    std::string path = dir.file("killed_" + std::to_string(k) + ".h5");
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      try {
        RunRecorder rec(path, sample_info());
        rec.set_flush_interval_seconds(0);
        for (std::int64_t i = 0;; ++i) {
          rec.add_curve_row("distill", {{"step", double(i)}, {"loss", 1.0 / double(i + 1)},
                                        {"lr", 1e-4}, {"tokens_per_s", 1000.0 + double(i)}});
          if (i % 5 == 0) rec.add_curve_row("finetune", {{"step", double(i)}, {"loss", 0.5}});
          if (i == 0) {
            char c = 'x';
            if (::write(fds[1], &c, 1) != 1) ::_exit(4);
          }
        }
      } catch (...) {
        ::_exit(3);
      }
    }
    ::close(fds[1]);
    char c = 0;
    ssize_t got = ::read(fds[0], &c, 1);  // the child has flushed its first row
    ::close(fds[0]);
    if (got == 1) ::usleep(useconds_t(delays_ms[k]) * 1000);
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
    ASSERT_EQ(got, 1) << "child exited early with status " << wstatus;
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << "status " << wstatus;

    RunReader r = RunReader::open(path);
    EXPECT_EQ(r.status(), RunStatus::Running);
    EXPECT_FALSE(run_is_complete(path));
    const Curve& d = r.curve("distill");
    EXPECT_GT(d.rows(), 0u) << "delay " << delays_ms[k] << " ms";
    for (const auto& col : d.columns) EXPECT_EQ(d.column(col).size(), d.rows()) << col;
    for (std::size_t i = 0; i < d.rows(); ++i) ASSERT_EQ(d.column("step")[i], double(i));
    const Curve& f = r.curve("finetune");
    EXPECT_EQ(f.column("step").size(), f.column("loss").size());
    // One finetune row per 5 distill rows, written just after its distill row: the kill
    // may fall between the two flushes.
    std::size_t expected = (d.rows() + 4) / 5;
    bool between = (d.rows() - 1) % 5 == 0 && f.rows() + 1 == expected;
    EXPECT_TRUE(f.rows() == expected || between) << f.rows() << " vs " << d.rows();

    // A rerun of the run starts afresh and sweeps away the killed writer's temporary.
    { RunRecorder rerun(path, sample_info()); }
    EXPECT_EQ(RunReader::open(path).curves().size(), 0u);
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      EXPECT_EQ(e.path().filename().string().rfind(".killed_" + std::to_string(k), 0),
                std::string::npos)
          << "leftover " << e.path();
    }
  }
}

// Writes a file that looks like a run file of another schema version.
void write_fake_run(const std::string& path, std::int64_t version, bool with_version) {
  H5::H5File f(path, H5F_ACC_TRUNC);
  if (with_version) {
    H5::Attribute a =
        f.createAttribute("schema_version", H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
    a.write(H5::PredType::NATIVE_INT64, &version);
  }
  H5::StrType st(H5::PredType::C_S1, H5T_VARIABLE);
  H5::Attribute s = f.createAttribute("status", st, H5::DataSpace(H5S_SCALAR));
  s.write(st, std::string("completed"));
}

TEST(Results, RunReaderRejectsOtherSchemaVersions) {
  TempDir dir;
  std::string v2 = dir.file("v2.h5");
  write_fake_run(v2, 2, true);
  expect_error([&] { RunReader::open(v2); },
               {v2, "schema version 2 is not supported", "reads schema version 1"});
  EXPECT_FALSE(run_is_complete(v2));

  std::string none = dir.file("none.h5");
  write_fake_run(none, 0, false);
  expect_error([&] { RunReader::open(none); }, {none, "not an offsite run file", "schema_version"});

  std::string ok = dir.file("ok.h5");
  write_fake_run(ok, 1, true);  // minimal file of the right version reads, with empty tables
  RunReader r = RunReader::open(ok);
  EXPECT_EQ(r.status(), RunStatus::Completed);
  EXPECT_TRUE(r.curves().empty());
}

TEST(Results, RunReaderRejectsGarbageTruncatedAndMissingFiles) {
  TempDir dir;
  std::string garbage = dir.file("garbage.h5");
  { std::ofstream(garbage) << "this is not an HDF5 file\n"; }
  expect_error([&] { RunReader::open(garbage); }, {garbage, "not an HDF5 file"});
  EXPECT_FALSE(run_is_complete(garbage));

  std::string empty = dir.file("empty.h5");
  { std::ofstream out(empty); }
  expect_error([&] { RunReader::open(empty); }, {empty, "not an HDF5 file"});

  std::string good = dir.file("good.h5");
  {
    RunRecorder rec(good, sample_info());
    for (int i = 0; i < 2000; ++i) rec.add_curve_row("distill", {{"step", i}, {"loss", 1.0}});
    rec.complete();
  }
  ASSERT_TRUE(run_is_complete(good));
  std::string truncated = dir.file("truncated.h5");
  std::filesystem::copy_file(good, truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(good) / 2);
  expect_error([&] { RunReader::open(truncated); }, {truncated});
  EXPECT_FALSE(run_is_complete(truncated));

  std::string missing = dir.file("missing.h5");
  expect_error([&] { RunReader::open(missing); }, {missing, "no such run file"});
  EXPECT_FALSE(run_is_complete(missing));
  expect_error([&] { RunReader::open(dir.path()); }, {dir.path(), "is a directory"});
}

// The file is meant for h5py/pandas users: check that h5py reads it as SCHEMA.md says.
TEST(Results, RunFileReadsWithH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with h5py is not installed";
  }
  TempDir dir;
  std::string path = dir.file("run.h5");
  {
    RunRecorder rec(path, sample_info());
    rec.add_curve_row("distill", {{"step", 1}, {"loss", 2.5}});
    rec.add_curve_row("distill", {{"step", 2}, {"loss", 2.25}});
    rec.add_eval({"plugin_finetuned", "piqa ✓", "acc", 0.75, 0.01, 100});
    rec.set_efficiency("peak_memory_mb", 512, "MB");
    rec.complete();
  }
  std::string script = dir.file("read.py");
  {
    std::ofstream py(script);
    py << "import sys, h5py\n"
          "f = h5py.File(sys.argv[1], 'r')\n"
          "a = f.attrs\n"
          "print(a['schema_version'], a['status'], a['world_size'], a['experiment'])\n"
          "c = f['curves/distill']\n"
          "print(list(c.attrs['columns']), c['step'][:].tolist(), c['loss'][:].tolist())\n"
          "e = f['eval']\n"
          "print(e['task'].asstr()[0], e['value'][0], e['n'][0], list(e.attrs['columns']))\n"
          "print(f['efficiency/name'].asstr()[0], f['efficiency/value'][0])\n";
  }
  std::string cmd = "/usr/bin/python3 " + script + " " + path + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ASSERT_EQ(::pclose(p), 0) << out;
  EXPECT_EQ(out,
            "1 completed 4 table2\n"
            "['step', 'loss'] [1.0, 2.0] [2.5, 2.25]\n"
            "piqa ✓ 0.75 100 ['setting', 'task', 'metric', 'value', 'stderr', 'n']\n"
            "peak_memory_mb 512.0\n");
}

}  // namespace
}  // namespace ot::results
