// results/run_state.cpp: see run_state.h.
#include "results/run_state.h"

#include "results/run_file.h"
#include "util/fs.h"

namespace ot::results {

std::string run_state_of(const std::string& result_path) {
  if (!file_exists(result_path)) return "pending";
  try {
    const RunReader r = RunReader::open(result_path);
    switch (r.status()) {
      case RunStatus::Completed: return "completed";
      case RunStatus::Failed: return "failed";
      case RunStatus::Running: return r.has_attribute("interrupted") ? "interrupted" : "running";
    }
  } catch (const std::exception&) {
  }
  return "unreadable";
}

}  // namespace ot::results
