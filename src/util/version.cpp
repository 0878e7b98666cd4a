// util/version.cpp: see version.h. OT_VERSION and OT_GIT_COMMIT come from CMake.
#include "util/version.h"

#include <torch/version.h>

#ifndef OT_VERSION
#define OT_VERSION "0.0.0"
#endif
#ifndef OT_GIT_COMMIT
#define OT_GIT_COMMIT "unknown"
#endif

namespace ot {

std::string version() { return OT_VERSION; }
std::string git_commit() { return OT_GIT_COMMIT; }

std::string build_info() {
  return std::string("offsite ") + OT_VERSION + " (commit " + OT_GIT_COMMIT + ", LibTorch " +
         TORCH_VERSION + ", " + __VERSION__ + ")";
}

}  // namespace ot
