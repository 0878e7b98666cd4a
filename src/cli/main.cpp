// cli/main.cpp: the `ot` entry point. Builds the subcommand tree and turns every error a
// user can cause into one line on stderr and a non-zero exit code:
//   1  the command failed (bad file, bad value, ...)
//   2  the command line itself is wrong (CLI11 usage errors)
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "dist/context.h"
#include "util/error.h"
#include "util/host_threads.h"
#include "util/version.h"

namespace {

// One line on stderr, exit code 1. Under an MPI launcher the other ranks must not be left
// waiting for this one: if they did not fail too, the job ends here (dist/context.h).
int report_error(const std::string& message) {
  std::cerr << "ot: error: " << message << "\n";
  ot::dist::end_job_unless_all_failed(message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ot: Offsite-Tuning for decoder language models (LibTorch)", "ot"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ot::build_info());
  app.fallthrough(false);

  ot::cli::register_forward(app);
  ot::cli::register_generate(app);
  ot::cli::register_inspect(app);
  ot::cli::register_init(app);
  ot::cli::register_plugin(app);
  ot::cli::register_bench(app);
  ot::cli::register_offsite_commands(app, argc, argv);
  ot::cli::register_convert(app);
  ot::cli::register_tokenize(app);
  ot::cli::register_eval(app);
  ot::cli::register_train_tokenizer(app);
  ot::cli::register_brown_text(app);
  ot::cli::register_run_commands(app, argc, argv);
  ot::cli::register_analyze(app);
  ot::cli::register_submit(app);

  try {
    // Before anything large is allocated: a step's freed tensors stay for the next step.
    ot::keep_freed_host_memory();
    // Under mpirun/srun every command runs on the MPI world as one data-parallel team
    // (`ot sweep --ranks-per-run` splits it further).
    ot::dist::join_world_if_launched();
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every usage error exits 2 (CLI11's own codes vary).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ot::Error& e) {
    return report_error(e.what());
  } catch (const c10::OutOfMemoryError& e) {
    std::string msg = e.what_without_backtrace();
    return report_error("out of GPU memory: " + msg.substr(0, msg.find('\n')) +
                        " (lower --batch-size, add --checkpoint-activations, or use --precision bf16)");
  } catch (const c10::Error& e) {
    // LibTorch errors carry a C++ backtrace; the first line is the part a user can act on.
    std::string msg = e.what_without_backtrace();
    return report_error(msg.substr(0, msg.find('\n')));
  } catch (const std::exception& e) {
    return report_error(e.what());
  }
  return 0;
}
