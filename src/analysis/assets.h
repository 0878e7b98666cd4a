// analysis/assets.h: where `ot analyze` finds the files of the top-level analysis/ folder
// (plot_results.py, paper_numbers.csv): $OT_ANALYSIS_DIR if set, else that folder of the
// source tree this binary was built from.
#pragma once

#include <string>

namespace ot::analysis {

std::string analysis_dir();
// analysis_dir() + "/" + name; throws ot::Error naming the path (and $OT_ANALYSIS_DIR)
// when the file does not exist.
std::string analysis_file(const std::string& name);

}  // namespace ot::analysis
