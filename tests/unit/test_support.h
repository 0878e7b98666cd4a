// tests/unit/test_support.h: helpers shared by the test files: where ../shared lives,
// temporary directories, reading files, running the `ot` CLI, and checking errors.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/error.h"

namespace ot::test {

// The repository root and the shared data directory beside it (override: OT_SHARED_DIR).
inline std::string repo_root() { return OT_REPO_ROOT; }
inline std::string shared_dir() {
  if (const char* env = std::getenv("OT_SHARED_DIR")) return env;
  return std::string(OT_REPO_ROOT) + "/../shared";
}
inline std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }
// A model of the Hugging Face reference fixtures: ../shared/fixtures/hf-parity/<arch>/ (its
// reference outputs are <arch>.json beside it, tests/unit/hf_fixtures.h).
inline std::string fixture_dir(const std::string& arch) { return shared_path("fixtures/hf-parity/" + arch); }

// The bytes of a file as stored; "" when it cannot be read (tests compare the result).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The smallest valid experiment file (paths are not checked until a run starts).
inline constexpr const char* kMinimalExperiment = R"(
[experiment]
name = "t"
recipe = "offsite"

[data.train]
path = "train.txt"

[model]
path = "m"

[finetune]
data = "train"
)";

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ot-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
    if (path_.empty()) throw std::runtime_error("mkdtemp failed");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Result of running the `ot` binary.
struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `ot <args>` through the shell (args are passed verbatim: quote them yourself).
CliResult run_cli(const std::string& args);
// The same with environment assignments first ("NAME=value NAME2=value2 ").
CliResult run_cli_env(const std::string& env, const std::string& args);

// stories260K (../shared/data/models, a real pretrained llama2.c model) converted by
// `ot convert llama2c` into the HF directory `out`; returns the command's result.
inline CliResult convert_stories260k(const std::string& out) {
  const std::string m = shared_path("data/models/stories260K/");
  return run_cli("convert llama2c --checkpoint " + m + "stories260K.bin --tokenizer " + m + "tok512.bin --out " + out);
}

// The two parties' steps after `ot emulator` on stories260K: the data owner fine-tunes
// `bundle` on the text file `text` for 3 steps into `adapter`, the owner plugs it into `full`
// at `plugged`. Returns the first failing command's result, else the plug-in's.
inline CliResult finetune_and_plug_in(const std::string& full, const std::string& bundle, const std::string& text,
                                      const std::string& adapter, const std::string& plugged) {
  CliResult r = run_cli("finetune --model " + bundle + " --corpus " + text +
                        " --block-size 32 --batch-size 4 --max-steps 3 --out " + adapter);
  if (r.exit_code != 0) return r;
  return run_cli("plugin --model " + full + " --bundle " + bundle + " --adapter " + adapter + " --out " + plugged);
}

// Writes `contents` to `path` as-is (test inputs, including deliberately broken ones).
inline void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

// The first `bytes` of the TinyStories text in ../shared written to `path`: the text the
// stories260K compression tests calibrate, distil and fine-tune on.
inline void write_tinystories_head(const std::string& path, std::size_t bytes) {
  const std::string source = shared_path("data/corpora/tinystories/tinystories_train_head.txt");
  const std::string text = slurp(source);
  if (text.empty()) throw std::runtime_error(source + ": cannot be read (the tests need ../shared)");
  write_file(path, text.substr(0, bytes));
}

// Runs `fn`, expecting ot::Error whose message contains every string in `parts`.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected ot::Error";
  } catch (const ot::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace ot::test
