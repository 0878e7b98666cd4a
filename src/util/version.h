// util/version.h: build identity (project version, git commit, LibTorch version) that
// `ot --version` prints and result files record as provenance.
#pragma once

#include <string>

namespace ot {

std::string version();      // "0.1.0"
std::string git_commit();   // short hash at configure time, or "unknown"
std::string build_info();   // one line: version, commit, LibTorch, compiler

}  // namespace ot
