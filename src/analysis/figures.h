// analysis/figures.h: the figures of `ot analyze`. Defines the JSON summary that the plot
// script reads (groups with their table cells, 8-task averages, privacy-utility differences,
// checks and published numbers; the runs with their curves, CKA matrices and file paths,
// the sweeps, the efficiency numbers, and the paper's vocabulary: settings and tasks in order
// with their labels, the checks, each shown metric's direction) and plot_figures, which runs
// `python3 analysis/plot_results.py` on it and turns every way that can fail (no Python,
// no matplotlib, a script error) into one ot::Error that suggests --no-figures.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "analysis/runs.h"
#include "analysis/tables.h"

namespace ot::analysis {

// Table values in the summary are in the shown scale (accuracies in %), with "unit": "%".
nlohmann::json figure_summary(const Analysis& a, const RunCollection& runs);

// The interpreter: $OT_PYTHON if set, else "python3" (looked up on PATH).
std::string python_interpreter();

// Runs the plot script (analysis_file("plot_results.py")) with --summary and --out; its
// output goes to stderr. Throws ot::Error if it cannot be started or does not succeed.
void plot_figures(const std::string& summary_path, const std::string& figures_dir);

}  // namespace ot::analysis
