// tests/fuzz/fuzz_common.h: helpers shared by the libFuzzer targets that hand their input to
// a reader taking a path: a per-process scratch directory, writing bytes to a file in it, and
// rejected() which prints the ot::Error message when OT_FUZZ_VERBOSE is set (to check what a
// seed exercises: OT_FUZZ_VERBOSE=1 ./fuzz_x seed).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"

namespace ot::fuzz {

// A scratch directory for this process, created on first use (under $TMPDIR or /tmp).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp && *tmp ? tmp : "/tmp") + "/ot-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes `size` bytes to `path` (replacing it); aborts if that fails (not an input problem).
inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// Removes `path` and everything under it, ignoring errors.
inline void remove_all(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// Called for every input a reader rejected with ot::Error.
inline void rejected(const ot::Error& e) {
  static const bool verbose = std::getenv("OT_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
}

}  // namespace ot::fuzz
