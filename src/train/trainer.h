// train/trainer.h: the training loop every recipe uses (pretraining, emulator
// distillation, adapter and full fine-tuning). AdamW with no weight decay on biases and
// norm weights (1-D tensors); constant/linear/cosine schedules with warmup; gradient
// clipping; gradient accumulation; evaluation every N steps keeping the best weights;
// a seeded, deterministic data order; a progress bar; mixed precision (bf16/fp16 autocast,
// fp16 loss scaling); batches moved to the parameters' device (pinned, non-blocking on
// CUDA); and a resumable state (weights, optimizer, schedule position, data position, CPU
// and CUDA RNG, loss scale) written atomically so an interrupted run continues with
// bit-identical results. The options and the table that declares them to the experiment
// TOML and the CLI: train/trainer_options.h.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/batch.h"
#include "dist/communicator.h"
#include "dist/fusion_buffer.h"
#include "model/precision.h"
#include "train/loss_scaler.h"
#include "train/trainer_options.h"

namespace ot {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
using Metrics = std::map<std::string, double>;

// Where a fit stands between two optimizer steps. It is saved as a unit with the weights,
// optimizer, RNG and loss scale in the resumable state file, so that a resumed fit continues
// exactly where the interrupted one stopped.
struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t micro_index = 0;     // micro-batches consumed: the position in the seeded data order
  int64_t tokens = 0;          // tokens trained on by the whole team
  double best_metric = 0.0;    // best evaluation of the options' best_metric (+-inf before any)
  int64_t best_step = -1;      // the step of that evaluation (-1: none yet)
  std::vector<Metrics> evals;  // every evaluation so far, with "step"

  // The state before the first step of a fit that keeps the lowest (or highest) metric.
  static TrainState start(bool lower_is_better);
};

struct TrainResult {
  int64_t steps = 0;           // optimizer steps completed (including before a resume)
  int64_t total_steps = 0;
  bool interrupted = false;    // stopped by a signal; state written
  bool resumed = false;
  double best_metric = 0.0;
  int64_t best_step = -1;
  double tokens_per_second = 0.0;       // the whole team, training steps only
  double rank_tokens_per_second = 0.0;  // this rank alone
  double exposed_comm_seconds = 0.0;    // gradient all-reduce time not hidden by backward
  double train_seconds = 0.0;           // wall time of this process's training steps
  double device_seconds = 0.0;          // the same span timed on the device (CUDA events; wall clock on CPU)
  double peak_device_memory_mib = 0.0;  // CUDA caching allocator's peak during fit() (0 on CPU)
  double loss_scale = 0.0;              // fp16: the final loss scale (0: no loss scaling)
  int64_t skipped_steps = 0;            // fp16: optimizer steps skipped for inf/NaN gradients
  int64_t tokens = 0;
  std::vector<Metrics> evals;  // every evaluation, with "step"
};

class Trainer {
 public:
  // `params`: the trainable tensors by name (names key the resumable state).
  Trainer(NamedTensors params, TrainerOptions opts);

  // loss(batch) returns the scalar loss of one micro-batch (already averaged over its
  // tokens); it may add entries to `extra` (e.g. kd, lm) which are averaged into the curve.
  using LossFn = std::function<at::Tensor(const Batch& batch, Metrics& extra)>;
  using EvalFn = std::function<Metrics()>;
  // Receives curve rows: {"step", "loss", "lr", "grad_norm", "tokens_per_s", ...} and
  // eval rows (curve name + "_eval").
  using LogFn = std::function<void(const std::string& curve, const Metrics& row)>;
  // Data parallelism over the ranks of `comm` (not owned; must outlive fit()): parameters
  // broadcast from rank 0 at the start, each rank trains on its share of every global batch
  // (data/sampler.h), gradients averaged in fused buckets (dist/fusion_buffer.h), metrics
  // summed, a stop signal on any rank stops all of them at the same step, and only rank 0
  // writes the resumable state.
  void set_data_parallel(dist::Communicator& comm, dist::BucketOptions buckets = {});
  // Called with true before training steps and with false around each evaluation and at the
  // end, so that the job can switch the model's dropout (model->train(t)).
  void set_mode_callback(std::function<void(bool training)> fn) { mode_fn_ = std::move(fn); }

  // Trains until the options' step count; stopped early by a stop signal (util/signals.h),
  // it writes the resumable state and returns with `interrupted` set.
  TrainResult fit(const BatchSource& data, const LossFn& loss, const EvalFn& eval = {}, const LogFn& log = {});

  // The resumable state file (the options' state_path): the trainable weights, the best
  // weights kept so far, the optimizer, the CPU (and CUDA) RNG, the loss scale and `state`.
  // save_state writes it atomically (rank 0 only; nothing without a state_path); load_state
  // restores all of it and returns `state`, or nullopt when there is no file to resume from.
  void save_state(const TrainState& state);
  std::optional<TrainState> load_state();

 private:
  class Fit;  // one call of fit(): the loop, as named steps

  NamedTensors params_;
  TrainerOptions o_;
  c10::Device device_ = c10::Device(c10::kCPU);
  std::unique_ptr<DynamicLossScaler> scaler_;  // fp16 only
  int rank_ = 0, world_ = 1;
  dist::Communicator* comm_ = nullptr;
  dist::BucketOptions buckets_;
  std::function<void(bool)> mode_fn_;
  struct OptimizerHolder;
  std::shared_ptr<OptimizerHolder> opt_;
  NamedTensors best_;
};

}  // namespace ot
