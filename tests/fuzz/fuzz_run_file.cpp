// tests/fuzz/fuzz_run_file.cpp: libFuzzer target for the HDF5 run-file reader behind
// `ot analyze` and `ot rerun`: results::RunReader::open and run_is_complete on a file,
// analysis::collect_runs on a results directory holding it, and, for a file that reads,
// the stored configuration `ot rerun` replays (experiment::config_from_text). Any file must
// read or throw ot::Error (run_is_complete: never throw); anything else escaping, a crash
// or a sanitizer report is a bug. Torch-free (HDF5's C++ API).
//
// Two modes:
//  * structured (default, CI): the input drives HDF5's API to write a well-formed HDF5 file
//    with adversarial contents: the schema's root attributes, curves, /eval, /efficiency and
//    /ranks present or not, of the right or a wrong type class (string, integer, float,
//    fixed or variable-length strings), scalar or 1-D, with columns of unequal lengths, plus
//    stray attributes and datasets. This exercises the reader's own validation.
//  * raw (OT_FUZZ_RUN_FILE_RAW=1): the input bytes are the file. This mostly exercises
//    libhdf5 itself; Debian's 1.10.8 crashes (H5A__close), hangs (global heap reads) and
//    leaks on corrupt files within seconds, which no reader-side check can prevent, so CI
//    does not run it. The structured mode skips inputs that start with HDF5's signature
//    (the .h5 seeds and their mutations); its seeds are the other files of the seed dir.
//
// The .h5 seeds were written by this binary with RunRecorder:
//   OT_FUZZ_WRITE_SEEDS=tests/fuzz/seeds/run_file ./build-fuzz/tests/fuzz_run_file
#include <H5Cpp.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "analysis/runs.h"
#include "experiment/config.h"
#include "fuzz_common.h"
#include "results/run_file.h"
#include "util/error.h"

namespace {

// Small run files as `ot run` writes them: completed (with a stored configuration, curves,
// evaluations, efficiency numbers and rank throughput), running, and failed.
void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  ot::results::RunInfo info;
  info.run_id = "fuzz-seed";
  info.experiment = "fuzz";
  info.config_toml = "[experiment]\nname = \"fuzz\"\nrecipe = \"offsite\"\n[model]\npath = \"m\"\n";
  info.command_line = "ot run fuzz.toml";
  info.git_commit = "0000000";
  info.host = "host";
  info.offsite_version = "0.0.0";
  info.libtorch_version = "1.13.0";
  {
    ot::results::RunRecorder r(dir + "/completed.h5", info);
    r.set_attribute("label", "seed");
    r.set_attribute("seed", 1);
    r.set_attribute("sweep_params", "{\"seed\": 1}");
    r.add_curve_row("train", {{"step", 1}, {"loss", 2.5}});
    r.add_curve_row("train", {{"step", 2}, {"loss", 2.25}});
    r.add_eval({"plugin_finetuned", "piqa", "acc", 0.5, 0.01, 10});
    r.set_efficiency("tokens_per_s", 100.0, "tokens/s");
    r.set_rank_throughput(0, 100.0);
    r.complete();
  }
  info.run_id = "fuzz-running";
  {
    ot::results::RunRecorder r(dir + "/running.h5", info);
    r.add_curve_row("distill", {{"step", 1}, {"loss", 1.0}, {"lr", 1e-4}});
    r.flush();
  }
  info.run_id = "fuzz-failed";
  info.config_toml = "";
  {
    ot::results::RunRecorder r(dir + "/failed.h5", info);
    r.fail("out of memory");
  }
}

// ---- structured mode: an HDF5 file written from the input ----

const char* const kRootAttrs[] = {"schema_version", "run_id", "experiment", "status", "error",
                                  "config_toml", "label", "group_id", "recipe", "paper_table",
                                  "seed", "sweep_params", "world_size", "created_utc", "x"};
const char* const kStatus[] = {"completed", "running", "failed", "done"};
const char* const kColumns[] = {"step", "loss", "lr", "setting", "task", "metric", "value",
                                "stderr", "n", "name", "unit", "rank", "tokens_per_s", "x"};

class Writer {
 public:
  explicit Writer(FuzzedDataProvider& in) : in_(in) {}

  std::string text() {
    switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: return kStatus[in_.ConsumeIntegralInRange<int>(0, 3)];
      case 1: return "1";
      case 2: return "{\"seed\": " + std::to_string(in_.ConsumeIntegralInRange<int>(-2, 3)) + "}";
      default: {
        std::string s = in_.ConsumeRandomLengthString(64);
        for (char& c : s)
          if (c == '\0') c = ' ';
        return s;
      }
    }
  }

  // An attribute or dataset of `n` elements (n < 0: scalar) of a type the input picks.
  template <class Make>
  void values(int n, Make make) {
    H5::DataSpace space = n < 0 ? H5::DataSpace(H5S_SCALAR) : one_d(n);
    const std::size_t count = n < 0 ? 1 : static_cast<std::size_t>(n);
    switch (in_.ConsumeIntegralInRange<int>(0, 4)) {
      case 0: {  // int64
        std::vector<std::int64_t> v(count);
        for (auto& x : v) x = in_.ConsumeIntegralInRange<std::int64_t>(-3, 3);
        if (!v.empty() && in_.ConsumeBool()) v[0] = 1;
        make(H5::DataType(H5::PredType::NATIVE_INT64), space, v.data());
        break;
      }
      case 1: {  // uint64 (may not fit int64)
        std::vector<std::uint64_t> v(count);
        for (auto& x : v) x = in_.ConsumeBool() ? ~0ull : in_.ConsumeIntegral<std::uint8_t>();
        make(H5::DataType(H5::PredType::NATIVE_UINT64), space, v.data());
        break;
      }
      case 2: {  // double
        std::vector<double> v(count);
        for (auto& x : v) x = in_.ConsumeFloatingPoint<double>();
        make(H5::DataType(H5::PredType::NATIVE_DOUBLE), space, v.data());
        break;
      }
      case 3: {  // variable-length UTF-8 strings
        std::vector<std::string> s(count);
        std::vector<const char*> p(count);
        for (std::size_t i = 0; i < count; ++i) p[i] = (s[i] = text()).c_str();
        H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
        t.setCset(H5T_CSET_UTF8);
        make(t, space, p.data());
        break;
      }
      default: {  // fixed-length strings, NUL-padded or not
        const std::size_t width = in_.ConsumeIntegralInRange<std::size_t>(1, 12);
        std::vector<char> buf(count * width, '\0');
        for (std::size_t i = 0; i < count; ++i) {
          const std::string s = text();
          for (std::size_t k = 0; k < width && k < s.size(); ++k) buf[i * width + k] = s[k];
        }
        H5::StrType t(H5::PredType::C_S1, width);
        if (in_.ConsumeBool()) t.setStrpad(H5T_STR_NULLPAD);
        make(t, space, buf.data());
        break;
      }
    }
  }

  void attribute(H5::H5Object& obj, const std::string& name, int n) {
    if (obj.attrExists(name)) return;
    values(n, [&](const H5::DataType& t, const H5::DataSpace& s, const void* buf) {
      obj.createAttribute(name, t, s).write(t, buf);
    });
  }

  void dataset(H5::Group& g, const std::string& name, int n) {
    if (g.nameExists(name)) return;
    values(n, [&](const H5::DataType& t, const H5::DataSpace& s, const void* buf) {
      g.createDataSet(name, t, s).write(buf, t);
    });
  }

  // A table group: a few of the schema's column names, each of 0..3 rows (or scalar).
  void table(H5::Group& g) {
    const int columns = in_.ConsumeIntegralInRange<int>(0, 7);
    for (int i = 0; i < columns; ++i) {
      const std::string name = kColumns[in_.ConsumeIntegralInRange<int>(0, 13)];
      dataset(g, name, in_.ConsumeIntegralInRange<int>(-1, 3));
    }
    if (in_.ConsumeBool()) attribute(g, "columns", in_.ConsumeIntegralInRange<int>(-1, 3));
    if (in_.ConsumeBool() && !g.nameExists("sub")) g.createGroup("sub");
  }

  void write(const std::string& path) {
    H5::H5File f(path, H5F_ACC_TRUNC);
    if (in_.ConsumeIntegralInRange<int>(0, 7) != 0) {  // mostly past the version and status checks
      const std::int64_t version = 1;
      f.createAttribute("schema_version", H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR))
          .write(H5::PredType::NATIVE_INT64, &version);
      H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
      const char* status = kStatus[in_.ConsumeIntegralInRange<int>(0, 2)];
      f.createAttribute("status", t, H5::DataSpace(H5S_SCALAR)).write(t, &status);
      if (in_.ConsumeBool()) {
        const char* toml = "[experiment]\nname = \"f\"\nrecipe = \"offsite\"\n[model]\npath = \"m\"\n";
        f.createAttribute("config_toml", t, H5::DataSpace(H5S_SCALAR)).write(t, &toml);
      }
    }
    const int attrs = in_.ConsumeIntegralInRange<int>(0, 16);
    for (int i = 0; i < attrs; ++i) {
      const int k = in_.ConsumeIntegralInRange<int>(0, 14);
      attribute(f, kRootAttrs[k], in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? 2 : -1);
    }
    for (const char* group : {"curves", "eval", "efficiency", "ranks"}) {
      const int how = in_.ConsumeIntegralInRange<int>(0, 3);
      if (how == 0) continue;
      if (how == 1) {  // a dataset where the group should be
        H5::Group root = f.openGroup("/");
        dataset(root, group, 1);
        continue;
      }
      H5::Group g = f.createGroup(group);
      if (std::string(group) == "curves") {
        const int curves = in_.ConsumeIntegralInRange<int>(0, 3);
        for (int c = 0; c < curves; ++c) {
          const std::string name = "c" + std::to_string(c);
          if (in_.ConsumeIntegralInRange<int>(0, 5) == 0) {
            dataset(g, name, 1);
          } else {
            H5::Group cg = g.createGroup(name);
            table(cg);
          }
        }
      } else {
        table(g);
      }
    }
  }

 private:
  static H5::DataSpace one_d(int n) {
    hsize_t dims[1] = {static_cast<hsize_t>(n)};
    return H5::DataSpace(1, dims);
  }

  FuzzedDataProvider& in_;
};

void read_back(const std::string& dir, const std::string& path) {
  (void)ot::results::run_is_complete(path);  // noexcept: an escaping exception terminates
  try {
    ot::results::RunReader r = ot::results::RunReader::open(path);
    for (const auto& [name, curve] : r.curves())
      for (const auto& col : curve.columns) (void)curve.column(col);
    if (r.has_attribute("config_toml"))
      (void)ot::experiment::config_from_text(r.string_attribute("config_toml"), path + " config_toml");
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  try {
    (void)ot::analysis::collect_runs(dir);
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("OT_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool raw = std::getenv("OT_FUZZ_RUN_FILE_RAW") != nullptr;
  const std::string dir = ot::fuzz::scratch_dir() + "/results";
  const std::string path = dir + "/run.h5";
  ot::fuzz::remove_all(dir);
  std::filesystem::create_directories(dir);
  if (raw) {
    ot::fuzz::write_file(path, data, size);
  } else {
    // HDF5 bytes (the .h5 seeds, and their mutations) are for the raw mode only.
    if (size >= 8 && std::memcmp(data, "\x89HDF\r\n\x1a\n", 8) == 0) return 0;
    FuzzedDataProvider in(data, size);
    try {
      Writer(in).write(path);
    } catch (const H5::Exception&) {
      return 0;  // a combination HDF5 refuses to write; nothing to read
    }
  }
  read_back(dir, path);
  return 0;
}
