// analysis/assets.cpp: see assets.h. OT_ANALYSIS_SOURCE_DIR is set by CMakeLists.txt.
#include "analysis/assets.h"

#include <cstdlib>

#include "util/error.h"
#include "util/fs.h"

#ifndef OT_ANALYSIS_SOURCE_DIR
#error "OT_ANALYSIS_SOURCE_DIR must name the analysis/ folder of the source tree"
#endif

namespace ot::analysis {

std::string analysis_dir() {
  const char* env = std::getenv("OT_ANALYSIS_DIR");
  if (env != nullptr && *env != '\0') return env;
  return OT_ANALYSIS_SOURCE_DIR;
}

std::string analysis_file(const std::string& name) {
  const std::string path = path_join(analysis_dir(), name);
  const bool from_env = std::getenv("OT_ANALYSIS_DIR") != nullptr && *std::getenv("OT_ANALYSIS_DIR") != '\0';
  OT_REQUIRE(file_exists(path), path, ": not found (", from_env ? "$OT_ANALYSIS_DIR" : "the source tree's analysis/ folder",
             " should hold ", name, "; set $OT_ANALYSIS_DIR to the analysis/ folder of the offsite sources)");
  return path;
}

}  // namespace ot::analysis
