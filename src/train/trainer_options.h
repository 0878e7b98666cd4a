// train/trainer_options.h: the trainer's options (TrainerOptions) and the one table that
// declares those a user sets. Per option the table holds its key in a training stage's
// experiment TOML section, its command-line flag, help text, lower bound, allowed values,
// TOML default (per stage where stages differ) and the member it reads and writes. The
// experiment schema (experiment/schema.cpp), the flags of the training commands
// (cli/common.cpp) and the reading of a stage's section into TrainerOptions are generated
// from it, so an option is added here and nowhere else. The table is plain data: it knows
// neither TOML nor the command-line parser, nor LibTorch beyond c10's type headers (so the
// torch-free fuzz targets of the schema compile it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "model/precision.h"

namespace ot {

// Dynamic loss scaling of fp16 training (train/loss_scaler.h), as torch.amp.GradScaler.
struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

struct TrainerOptions {
  double lr = 1e-4;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "linear";  // constant | linear | cosine
  int64_t warmup_steps = 0;
  int64_t epochs = 1;
  int64_t max_steps = 0;            // > 0 overrides epochs
  int64_t batch_size = 4;           // per rank, per micro-batch
  int64_t grad_accum = 1;           // micro-batches per optimizer step
  // > 0: examples per optimizer step over the whole team, which then sets the micro-batch
  // (micro_batch_size): the same training on 1, 2 or 4 ranks, up to round-off.
  int64_t global_batch_size = 0;
  double clip_norm = 1.0;           // <= 0: no clipping
  double head_lr_scale = 1.0;       // lr multiple of the output layer (BlockModelImpl::is_output_layer_param)
  int64_t eval_every = 0;           // optimizer steps; 0: only at the end
  bool keep_best = true;            // restore the best-evaluated weights at the end
  std::string best_metric = "loss";
  bool lower_is_better = true;
  uint64_t seed = 42;
  std::string state_path;           // resumable state file; empty: no resume support
  int64_t save_every = 0;           // write the state every N steps (0: only on stop)
  std::string label = "train";      // progress bar and curve name
  bool drop_last = false;
  // Mixed precision of the forward passes (loss and evaluation) with fp32 master weights and
  // optimizer state; fp16 adds dynamic loss scaling (train/loss_scaler.h).
  Precision precision = Precision::kFp32;
  LossScalerOptions loss_scaler;
  // Per-block activation checkpointing; the job applies it to the model it trains.
  bool checkpoint_activations = false;
};

// The member of TrainerOptions an option reads and writes, by its C++ type.
using TrainerOptionMember = std::variant<double TrainerOptions::*, int64_t TrainerOptions::*,
                                         uint64_t TrainerOptions::*, std::string TrainerOptions::*>;

// One user-settable trainer option. Options the jobs set themselves (best_metric, label,
// ...) and those that come from the runtime settings (precision, checkpoint_activations)
// are not in the table.
struct TrainerOptionSpec {
  enum class Type { kFloat, kInt, kString };

  std::string toml_key;   // key in a training stage's section ("lr"); "": not in experiment TOML
  std::string cli_flag;   // "--lr"; "": no command-line flag
  TrainerOptionMember member;
  std::string doc;        // the schema's description, and the flag's help unless cli_doc says otherwise
  std::string cli_doc = "";  // the flag's help where it differs from doc ("": doc)
  std::optional<double> min = std::nullopt;  // inclusive lower bound of a number
  std::vector<std::string> choices = {};     // allowed strings in TOML (empty: any)
  std::string default_toml = "";             // TOML default of a stage section, as TOML text
  // {stage section, TOML default} for the stages whose default differs from default_toml.
  std::vector<std::pair<std::string, std::string>> stage_defaults = {};

  Type type() const;
  const std::string& cli_help() const { return cli_doc.empty() ? doc : cli_doc; }
  // The TOML default in stage section `stage` ("pretrain", "finetune", ...).
  const std::string& default_for(const std::string& stage) const;
  // The member itself, when it has C++ type T (throws std::bad_variant_access otherwise).
  template <class T>
  T& in(TrainerOptions& o) const {
    return o.*std::get<T TrainerOptions::*>(member);
  }
  template <class T>
  const T& in(const TrainerOptions& o) const {
    return o.*std::get<T TrainerOptions::*>(member);
  }
};

// Every user-settable option, in the order the schema and the flags list them.
const std::vector<TrainerOptionSpec>& trainer_option_table();

// The entry with this TOML key or flag; null if there is none.
const TrainerOptionSpec* find_trainer_option(const std::string& toml_key_or_flag);

// Examples per rank per micro-batch on a team of `ranks`: batch_size, or, when
// global_batch_size is set, global_batch_size / (ranks x grad_accum). Throws ot::Error
// naming `where` when that division leaves a remainder.
int64_t micro_batch_size(const TrainerOptions& o, int64_t ranks, const std::string& where);

}  // namespace ot
