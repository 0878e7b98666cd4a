// analysis/render.h: writing an Analysis (tables.h) as the three files of `ot analyze`:
// Markdown (tables.md, also printed), LaTeX with booktabs rules (tables.tex) and a long-format
// CSV (tables.csv: group,setting,task,metric,mean,sem,n_seeds,paper).
//
// Shown values: accuracies in % with one decimal, other metrics with two; "mean ± sem";
// "(n=K)" where a cell has fewer runs than its group. The CSV keeps each metric's own
// scale (accuracies as fractions) with up to 10 significant digits.
#pragma once

#include <string>

#include "analysis/runs.h"
#include "analysis/tables.h"

namespace ot::analysis {

// `runs` supplies the skipped runs and ignored temporaries listed at the end.
std::string render_markdown(const Analysis& a, const RunCollection& runs);
std::string render_latex(const Analysis& a);
std::string render_csv(const Analysis& a);

}  // namespace ot::analysis
