// train/trainer_options.cpp: see trainer_options.h.
#include "train/trainer_options.h"

#include "util/error.h"

namespace ot {

TrainerOptionSpec::Type TrainerOptionSpec::type() const {
  if (std::holds_alternative<double TrainerOptions::*>(member)) return Type::kFloat;
  if (std::holds_alternative<std::string TrainerOptions::*>(member)) return Type::kString;
  return Type::kInt;
}

const std::string& TrainerOptionSpec::default_for(const std::string& stage) const {
  for (const auto& [s, value] : stage_defaults)
    if (s == stage) return value;
  return default_toml;
}

const std::vector<TrainerOptionSpec>& trainer_option_table() {
  using O = TrainerOptions;
  // Stage defaults: pretraining and distillation run cosine schedules on larger batches; the
  // full fine-tuning baseline takes the paper's smaller rate for more epochs. The defaults
  // without a stage are those of TrainerOptions (and so of the flags).
  static const std::vector<TrainerOptionSpec> table = {
      {"lr", "--lr", &O::lr, "peak learning rate", "", 0.0, {}, "1e-4",
       {{"pretrain", "1e-3"}, {"full_finetune", "2e-5"}}},
      {"weight_decay", "--weight-decay", &O::weight_decay, "AdamW weight decay (not on biases and norms)", "", 0.0, {},
       "0.0"},
      {"schedule", "--schedule", &O::schedule, "learning-rate schedule", "constant, linear or cosine", std::nullopt,
       {"constant", "linear", "cosine"}, "\"linear\"",
       {{"pretrain", "\"cosine\""}, {"distill", "\"cosine\""}}},
      {"warmup_steps", "--warmup-steps", &O::warmup_steps, "linear warmup steps", "", 0.0, {}, "0"},
      {"epochs", "--epochs", &O::epochs, "passes over the data", "", 1.0, {}, "1", {{"full_finetune", "3"}}},
      {"max_steps", "--max-steps", &O::max_steps, "optimizer steps; > 0 overrides epochs",
       "optimizer steps (overrides --epochs)", 0.0, {}, "0"},
      {"batch_size", "--batch-size", &O::batch_size, "examples per micro-batch", "", 1.0, {}, "4",
       {{"pretrain", "8"}, {"distill", "8"}}},
      {"grad_accum", "--grad-accum", &O::grad_accum, "micro-batches per optimizer step", "", 1.0, {}, "1"},
      {"global_batch_size", "--global-batch-size", &O::global_batch_size,
       "examples per optimizer step over all ranks (0: batch_size x grad_accum x ranks); when set, each rank's "
       "micro-batch is global_batch_size / (ranks x grad_accum), so a team of any size trains the same way",
       "", 0.0, {}, "0"},
      {"clip_norm", "--clip-norm", &O::clip_norm, "gradient clipping norm (0: off)", "", 0.0, {}, "1.0"},
      {"head_lr_scale", "--head-lr-scale", &O::head_lr_scale,
       "learning rate of the output layer (classifier, LM head, projection) as a multiple of lr; the paper "
       "trains a vision model's classifier at 10x",
       "", 0.0, {}, "1.0"},
      {"eval_every", "--eval-every", &O::eval_every, "evaluate every N steps (0: at the end)", "", 0.0, {}, "0"},
      // An experiment's data order follows experiment.seed (pretraining: pretrain.seed).
      {"", "--seed", &O::seed, "data order seed", "", 0.0},
      {"", "--state", &O::state_path, "resumable state file (resumes when present)"},
      {"save_every", "--save-every", &O::save_every, "write resumable state every N steps (0: only when stopped)",
       "write the state every N steps", 0.0, {}, "0"},
  };
  return table;
}

const TrainerOptionSpec* find_trainer_option(const std::string& toml_key_or_flag) {
  for (const TrainerOptionSpec& o : trainer_option_table())
    if ((!o.toml_key.empty() && o.toml_key == toml_key_or_flag) || (!o.cli_flag.empty() && o.cli_flag == toml_key_or_flag))
      return &o;
  return nullptr;
}

int64_t micro_batch_size(const TrainerOptions& o, int64_t ranks, const std::string& where) {
  if (o.global_batch_size <= 0) return o.batch_size;
  const int64_t per_micro = ranks * o.grad_accum;
  OT_REQUIRE(o.global_batch_size % per_micro == 0, where, ": global_batch_size ", o.global_batch_size,
             " does not split evenly over ", ranks, " rank(s) x grad_accum ", o.grad_accum,
             " (expected a multiple of ", per_micro, ")");
  return o.global_batch_size / per_micro;
}

}  // namespace ot
