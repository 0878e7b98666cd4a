// cli/commands.h: one registration function per `ot` subcommand. Each lives in its own
// file in src/cli/, parses its flags with CLI11 and calls into the library, nothing else.
#pragma once

#include <CLI/CLI.hpp>

namespace ot::cli {

void register_forward(CLI::App& app);
void register_generate(CLI::App& app);
void register_inspect(CLI::App& app);
void register_init(CLI::App& app);
void register_plugin(CLI::App& app);
void register_bench(CLI::App& app);
// `ot emulator` and `ot finetune`; argv is recorded as provenance.
void register_offsite_commands(CLI::App& app, int argc, char** argv);
void register_convert(CLI::App& app);  // convert.cpp: `ot convert llama2c ...`
// `ot tokenize` and `ot detokenize`.
void register_tokenize(CLI::App& app);
// eval.cpp: `ot eval`, harness task metrics and perplexity.
void register_eval(CLI::App& app);
// train_tokenizer.cpp: `ot train-tokenizer`, byte-level BPE training.
void register_train_tokenizer(CLI::App& app);
// brown_text.cpp: `ot brown-text`, Brown Corpus text by genre and split.
void register_brown_text(CLI::App& app);
// run.cpp: `ot run`, `ot rerun`, `ot sweep` and `ot schema` (experiments from TOML); argv is recorded.
void register_run_commands(CLI::App& app, int argc, char** argv);
// submit.cpp: `ot submit` and `ot status`, sweeps on Slurm.
void register_submit(CLI::App& app);
// analyze.cpp: `ot analyze`, the paper's tables and figures from run files.
void register_analyze(CLI::App& app);

}  // namespace ot::cli
