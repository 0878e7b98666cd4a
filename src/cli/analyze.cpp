// cli/analyze.cpp: `ot analyze RESULTS_DIR [--out DIR] [--metric acc|acc_norm] [--no-figures]`:
// the paper's tables (tables.md, printed too; tables.tex; tables.csv) and figures
// (figures/*.png, *.svg via analysis/plot_results.py) from every run file under a results
// directory. Runs that did not complete are listed on stderr and at the end of tables.md.
#include <filesystem>
#include <iostream>

#include "analysis/assets.h"
#include "analysis/figures.h"
#include "analysis/paper.h"
#include "analysis/render.h"
#include "analysis/runs.h"
#include "analysis/tables.h"
#include "cli/commands.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

void register_analyze(CLI::App& app) {
  struct Args {
    std::string results, out, metric = "acc";
    bool no_figures = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "analyze", "The paper's tables and figures from a results directory of run files (*.h5)");
  cmd->add_option("RESULTS_DIR", args->results, "directory searched recursively for run files (*.h5)")->required();
  cmd->add_option("--out", args->out, "output directory (default: RESULTS_DIR/analysis)");
  cmd->add_option("--metric", args->metric, "accuracy shown where a task has both acc and acc_norm")
      ->capture_default_str()
      ->check(CLI::IsMember({"acc", "acc_norm"}));
  cmd->add_flag("--no-figures", args->no_figures,
                "write the tables only (the figures need python3 with matplotlib, numpy and h5py; "
                "$OT_PYTHON picks the interpreter, $OT_ANALYSIS_DIR the folder of plot_results.py)");
  cmd->callback([args] {
    const std::string out = args->out.empty() ? path_join(args->results, "analysis") : args->out;
    analysis::RunCollection runs = analysis::collect_runs(args->results);
    if (!runs.ignored.empty()) {
      std::cerr << "ignored " << runs.ignored.size() << " leftover temporary file"
                << (runs.ignored.size() == 1 ? "" : "s") << " (.*.tmp.*) of killed writers\n";
    }
    for (const analysis::SkippedRun& s : runs.skipped) std::cerr << "skipped: " << s.path << " (" << s.reason << ")\n";
    OT_REQUIRE(!runs.runs.empty(), args->results, ": no completed run files (", runs.skipped.size(),
               " skipped); expected *.h5 files with status \"completed\"");

    std::optional<analysis::PaperNumbers> paper;
    if (analysis::needs_paper_numbers(runs.runs)) {
      paper = analysis::PaperNumbers::load(analysis::analysis_file("paper_numbers.csv"));
    }
    const analysis::Analysis a = analysis::analyze(runs.runs, args->metric, paper ? &*paper : nullptr);
    for (const std::string& note : a.notes) std::cerr << "note: " << note << "\n";

    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    OT_REQUIRE(!ec, out, ": cannot create the output directory: ", ec.message());
    const std::string md = analysis::render_markdown(a, runs);
    const std::string summary = path_join(out, "summary.json");
    // The four files change together: a failed write (a full disk) leaves the earlier set.
    write_text_files_together({{path_join(out, "tables.md"), md},
                               {path_join(out, "tables.tex"), analysis::render_latex(a)},
                               {path_join(out, "tables.csv"), analysis::render_csv(a)},
                               {summary, analysis::figure_summary(a, runs).dump(1) + "\n"}});
    std::cout << md << std::flush;
    std::cerr << "wrote tables.md, tables.tex, tables.csv and summary.json to " << out << "\n";

    if (!args->no_figures) {
      const std::string figures = path_join(out, "figures");
      std::filesystem::create_directories(figures, ec);
      OT_REQUIRE(!ec, figures, ": cannot create the figures directory: ", ec.message());
      analysis::plot_figures(summary, figures);
    }
  });
}

}  // namespace ot::cli
