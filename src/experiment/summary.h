// experiment/summary.h: the console summary of a completed run: its results as a settings x
// (task, metric) table, and per column whether the paper's pattern holds (pattern_margins).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "eval/harness.h"

namespace ot::experiment {

// A metric's value as the tables print it (accuracies in percent).
std::string format_metric_value(const std::string& metric, double value);

// Prints the table of `rows` (setting, result) to stdout; nothing when no row has a printed metric.
void print_run_summary(const std::string& run_id, const std::vector<std::pair<std::string, TaskResult>>& rows);

}  // namespace ot::experiment
