// experiment/schema.h: every key an experiment TOML may hold, its type, default and allowed
// values. `apply_schema` checks a merged configuration against it (unknown keys with a
// "did you mean" suggestion, wrong types, values out of range, references to data sources
// that do not exist), fills the defaults, and reports the first problem with the file, line
// and column it came from. `schema_reference` prints the whole schema as Markdown
// (experiments/SCHEMA.md is generated from it).
#pragma once

#include <string>
#include <vector>

#include "experiment/config.h"

namespace ot {
struct TrainerOptions;
}

namespace ot::experiment {

// The recipes `ot run` knows.
const std::vector<std::string>& recipes();

// Validates `t` and fills defaults in place. Throws ot::Error naming the key and its location.
// `cross_checks` = false checks each key alone (a sweep's base, whose runs may set required
// keys such as finetune.task); every run of it is checked in full.
void apply_schema(toml::table& t, const SourceMap& sources, bool cross_checks = true);

// The trainer options of training stage `stage` (a section: "pretrain", "distill",
// "finetune", "full_finetune") of a resolved configuration: every option of
// train/trainer_options.h with a TOML key; the others keep TrainerOptions' defaults.
TrainerOptions trainer_options_from(const Config& c, const std::string& stage);

// The schema as a Markdown reference.
std::string schema_reference();

// The closest of `candidates` to `word` if it is close enough to be a likely typo, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace ot::experiment
