// train/trainer.cpp: see trainer.h.
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/statvfs.h>
#include <torch/torch.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "model/block_model.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/gpu.h"
#include "util/progress.h"
#include "util/signals.h"

namespace ot {

struct Trainer::OptimizerHolder {
  std::unique_ptr<torch::optim::AdamW> adamw;
  std::vector<double> lr_scale;  // per parameter group
};

Trainer::Trainer(NamedTensors params, TrainerOptions opts) : params_(std::move(params)), o_(std::move(opts)) {
  OT_REQUIRE(!params_.empty(), o_.label, ": nothing to train (no trainable parameters)");
  OT_REQUIRE(o_.lr > 0, o_.label, ": learning rate must be positive, got ", o_.lr);
  OT_REQUIRE(o_.batch_size > 0, o_.label, ": batch size must be positive, got ", o_.batch_size);
  OT_REQUIRE(o_.grad_accum > 0, o_.label, ": gradient accumulation must be positive, got ", o_.grad_accum);
  OT_REQUIRE(o_.epochs > 0 || o_.max_steps > 0, o_.label, ": needs epochs > 0 or max_steps > 0");
  check_schedule_kind(o_.schedule, o_.label + ": schedule");
  device_ = params_.front().second.device();
  for (auto& p : params_) {
    OT_REQUIRE(p.second.device() == device_, o_.label, ": trainable tensors on two devices (", device_, " and ",
               p.second.device(), ")");
    check_precision(o_.precision, device_, p.second.scalar_type(), o_.label + ": precision");
  }
  if (o_.precision == Precision::kFp16) scaler_ = std::make_unique<DynamicLossScaler>(o_.loss_scaler);
  OT_REQUIRE(o_.head_lr_scale > 0, o_.label, ": head_lr_scale must be positive, got ", o_.head_lr_scale);
  std::vector<at::Tensor> tensors;
  std::vector<double> scales;
  for (auto& p : params_) {
    tensors.push_back(p.second);
    scales.push_back(BlockModelImpl::is_output_layer_param(p.first) ? o_.head_lr_scale : 1.0);
  }
  opt_ = std::make_shared<OptimizerHolder>();
  opt_->adamw = make_adamw(tensors, o_, scales);
  // Each group's lr as a multiple of the schedule's, fixed here (a loaded state keeps them).
  for (auto& g : opt_->adamw->param_groups())
    opt_->lr_scale.push_back(static_cast<torch::optim::AdamWOptions&>(g.options()).lr() / o_.lr);
}

void Trainer::set_data_parallel(dist::Communicator& comm, dist::BucketOptions buckets) {
  comm_ = &comm;
  rank_ = comm.rank();
  world_ = comm.size();
  buckets_ = buckets;
}

namespace {
// JSON has no infinities or NaN (nlohmann writes them as null): such values, e.g. the "best"
// of a run not yet evaluated or an overflowed perplexity, are stored as the strings "inf",
// "-inf" and "nan".
nlohmann::json number_to_json(double x) {
  if (std::isfinite(x)) return x;
  return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
}

double number_from_json(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.is_string() ? j.get<std::string>() : "";
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  if (s == "nan") return NAN;
  fail("trainer state: expected a number, got ", j.dump());
}

// A TrainState's fields in the state file's metadata (keys as in every earlier state file).
void write_state_meta(const TrainState& s, nlohmann::json& meta) {
  nlohmann::json evals = nlohmann::json::array();
  for (const auto& m : s.evals) {
    nlohmann::json row = nlohmann::json::object();
    for (const auto& [k, v] : m) row[k] = number_to_json(v);
    evals.push_back(row);
  }
  meta["step"] = s.step;
  meta["micro"] = s.micro_index;
  meta["tokens"] = s.tokens;
  meta["best"] = number_to_json(s.best_metric);
  meta["best_step"] = s.best_step;
  meta["evals"] = evals;
}

TrainState read_state_meta(nlohmann::json& meta) {
  TrainState s;
  s.step = meta["step"].get<int64_t>();
  s.micro_index = meta["micro"].get<int64_t>();
  s.tokens = meta["tokens"].get<int64_t>();
  s.best_metric = number_from_json(meta["best"]);
  s.best_step = meta["best_step"].get<int64_t>();
  for (const auto& e : meta["evals"]) {
    Metrics m;
    for (const auto& [k, v] : e.items()) m[k] = number_from_json(v);
    s.evals.push_back(m);
  }
  return s;
}
}  // namespace

TrainState TrainState::start(bool lower_is_better) {
  TrainState s;
  s.best_metric = lower_is_better ? INFINITY : -INFINITY;
  return s;
}

void Trainer::save_state(const TrainState& state) {
  if (o_.state_path.empty() || rank_ != 0) return;
  torch::NoGradGuard ng;
  torch::serialize::OutputArchive ar;
  nlohmann::json meta = {{"format", "offsite-trainer-state"}, {"version", 1}, {"label", o_.label},
                         {"precision", precision_name(o_.precision)}};
  write_state_meta(state, meta);
  if (scaler_) meta["loss_scaler"] = scaler_->state();
  std::vector<std::string> names;
  std::vector<at::Tensor> values, best_values;
  for (auto& p : params_) {
    names.push_back(p.first);
    values.push_back(p.second.detach().to(torch::kCPU).clone());
  }
  for (auto& p : best_) best_values.push_back(p.second);
  meta["names"] = names;
  meta["has_best"] = !best_.empty();
  ar.write("meta", c10::IValue(meta.dump()));
  ar.write("params", c10::IValue(c10::List<at::Tensor>(values)));
  ar.write("best", c10::IValue(c10::List<at::Tensor>(best_values)));
  ar.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  if (device_.is_cuda()) ar.write("cuda_rng", at::globalContext().defaultGenerator(device_).get_state());
  torch::serialize::OutputArchive opt_ar;
  opt_->adamw->save(opt_ar);
  ar.write("optimizer", opt_ar);
  remove_atomic_write_leftovers(o_.state_path);  // of a killed attempt (rank 0 is the one writer)
  write_file_atomically(o_.state_path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    OT_REQUIRE(out.good(), o_.state_path, ": cannot create the trainer state (", std::strerror(errno), ")");
    // LibTorch's archive writer aborts the process when a write comes up short (its destructor
    // writes again and throws), so the writer always reports success and the failure is ours.
    int err = 0;
    bool failed = false;
    ar.save_to([&](const void* data, size_t n) -> size_t {
      if (!failed) {
        errno = 0;
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
        if (!out.good()) {
          failed = true;
          err = errno;
        }
      }
      return n;
    });
    out.flush();
    if (!failed && !out.good()) {
      failed = true;
      err = errno;
    }
    if (failed) {
      struct statvfs fs_info {};
      const std::string parent = std::filesystem::path(tmp).parent_path().string();
      const bool full = err == ENOSPC || (::statvfs(parent.empty() ? "." : parent.c_str(), &fs_info) == 0 &&
                                          fs_info.f_bavail == 0);
      fail(o_.state_path, ": cannot write the trainer state (",
           full ? std::strerror(ENOSPC) : err ? std::strerror(err) : "write failed", "); the file is left as it was");
    }
  });
}

std::optional<TrainState> Trainer::load_state() {
  if (o_.state_path.empty() || !file_exists(o_.state_path)) return std::nullopt;
  torch::NoGradGuard ng;
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(o_.state_path);
  } catch (const c10::Error& e) {
    fail(o_.state_path, ": cannot read trainer state (", std::string(e.what_without_backtrace()).substr(0, 200),
         "); delete it to start over");
  }
  c10::IValue meta_v, params_v, best_v, rng_v;
  ar.read("meta", meta_v);
  auto meta = nlohmann::json::parse(meta_v.toStringRef());
  OT_REQUIRE(meta.value("format", "") == "offsite-trainer-state", o_.state_path, ": not a trainer state file");
  const std::string saved_precision = meta.value("precision", "fp32");
  OT_REQUIRE(saved_precision == precision_name(o_.precision), o_.state_path, ": state was written with precision ",
             saved_precision, " but this run uses ", precision_name(o_.precision),
             " (resume with the same precision, or delete the file to start over)");
  std::vector<std::string> names = meta["names"].get<std::vector<std::string>>();
  OT_REQUIRE(names.size() == params_.size(), o_.state_path, ": state has ", names.size(),
             " trainable tensors but this run trains ", params_.size(), " (different configuration?)");
  for (size_t i = 0; i < names.size(); ++i)
    OT_REQUIRE(names[i] == params_[i].first, o_.state_path, ": state tensor ", i, " is '", names[i],
               "' but this run expects '", params_[i].first, "' (different configuration?)");
  ar.read("params", params_v);
  auto values = params_v.toTensorList();
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor v = values.get(i);
    OT_REQUIRE(v.sizes() == params_[i].second.sizes(), o_.state_path, ": tensor '", names[i], "' has shape ",
               v.sizes(), ", expected ", params_[i].second.sizes());
    params_[i].second.copy_(v.to(params_[i].second.device()));
  }
  best_.clear();
  if (meta.value("has_best", false)) {
    ar.read("best", best_v);
    auto bl = best_v.toTensorList();
    for (size_t i = 0; i < params_.size(); ++i) best_.emplace_back(params_[i].first, bl.get(i));
  }
  at::Tensor rng;
  ar.read("rng", rng);
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle on the global generator
  gen.set_state(rng);
  if (device_.is_cuda()) {
    at::Tensor cuda_rng;
    OT_REQUIRE(ar.try_read("cuda_rng", cuda_rng), o_.state_path,
               ": state has no CUDA random state (written by a CPU run?); delete it to start over");
    at::Generator g = at::globalContext().defaultGenerator(device_);
    g.set_state(cuda_rng);
  }
  if (scaler_) {
    OT_REQUIRE(meta.contains("loss_scaler"), o_.state_path, ": fp16 state without a loss scale");
    scaler_->load_state(meta["loss_scaler"], o_.state_path);
  }
  torch::serialize::InputArchive opt_ar;
  ar.read("optimizer", opt_ar);
  opt_->adamw->load(opt_ar);
  return read_state_meta(meta);
}

// One call of fit(): what it trains on, its plan (data order, step count, schedule), where it
// stands (TrainState) and what it reports, with the loop's parts as named steps.
class Trainer::Fit {
 public:
  Fit(Trainer& trainer, const BatchSource& data, const LossFn& loss, const EvalFn& eval, const LogFn& log);
  TrainResult run();

 private:
  // One optimizer step's losses, tokens and extra metrics, summed over its micro-batches
  // (and over the ranks once reduced).
  struct StepSums {
    double loss = 0.0;
    int64_t tokens = 0;
    Metrics extra;
  };
  struct GradientStep {
    double grad_norm = 0.0;
    bool skipped = false;  // fp16: inf/NaN gradients, no update
  };

  static SamplerOptions sampler_options(const Trainer& t, const BatchSource& data);
  void restore();
  void start_data_parallel();
  bool stop_requested_on_any_rank() const;
  void optimizer_step(ProgressBar& bar);
  StepSums forward_backward(int64_t n_micro);
  [[noreturn]] void fail_diverged(double loss_value, int64_t micro_batches_done);
  void reduce_across_ranks(StepSums& sums);
  GradientStep apply_gradients();
  void evaluate(ProgressBar& bar);
  void keep_if_best(const Metrics& m);
  void finish(gpu::Timer& device_timer);
  void set_mode(bool training) {
    if (t_.mode_fn_) t_.mode_fn_(training);
  }
  double seconds_since_start() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  Trainer& t_;
  const TrainerOptions& o_;
  const BatchSource& data_;
  const LossFn& loss_fn_;
  const EvalFn& eval_;
  const LogFn& log_;
  EpochSampler sampler_;
  int64_t per_epoch_ = 0, total_micro_ = 0, total_steps_ = 0;
  LrSchedule schedule_;
  std::vector<at::Tensor> tensors_;
  std::unique_ptr<dist::GradientAllReducer> reducer_;
  TrainState state_;
  TrainResult result_;
  std::chrono::steady_clock::time_point start_;
  int64_t tokens_this_process_ = 0, tokens_this_rank_ = 0;
};

SamplerOptions Trainer::Fit::sampler_options(const Trainer& t, const BatchSource& data) {
  SamplerOptions so;
  so.num_examples = data.size();
  so.batch_size = micro_batch_size(t.o_, t.world_, t.o_.label);
  so.seed = t.o_.seed;
  so.rank = t.rank_;
  so.world_size = t.world_;
  so.drop_last = t.o_.drop_last;
  return so;
}

Trainer::Fit::Fit(Trainer& trainer, const BatchSource& data, const LossFn& loss, const EvalFn& eval, const LogFn& log)
    : t_(trainer),
      o_(trainer.o_),
      data_(data),
      loss_fn_(loss),
      eval_(eval),
      log_(log),
      sampler_(sampler_options(trainer, data)),
      state_(TrainState::start(trainer.o_.lower_is_better)) {
  per_epoch_ = sampler_.batches_per_epoch();
  OT_REQUIRE(per_epoch_ > 0, o_.label, ": ", data.size(), " examples make no batch of ",
             micro_batch_size(o_, t_.world_, o_.label) * t_.world_);
  total_micro_ = o_.max_steps > 0 ? o_.max_steps * o_.grad_accum : o_.epochs * per_epoch_;
  total_steps_ = (total_micro_ + o_.grad_accum - 1) / o_.grad_accum;
  schedule_ = LrSchedule{o_.schedule, o_.lr, o_.warmup_steps, total_steps_};
  result_.total_steps = total_steps_;
  for (auto& p : t_.params_) tensors_.push_back(p.second);
}

TrainResult Trainer::Fit::run() {
  restore();
  start_data_parallel();
  ProgressBar bar(o_.label, total_steps_);
  if (result_.resumed)
    bar.note(o_.label + ": resumed from " + o_.state_path + " at step " + std::to_string(state_.step));
  set_mode(true);
  gpu::reset_peak_memory(t_.device_);
  gpu::Timer device_timer(t_.device_);
  device_timer.start();
  start_ = std::chrono::steady_clock::now();
  while (state_.step < total_steps_) {
    if (stop_requested_on_any_rank()) {
      t_.save_state(state_);
      result_.interrupted = true;
      break;
    }
    optimizer_step(bar);
    const bool last = state_.step == total_steps_;
    if ((o_.eval_every > 0 && state_.step % o_.eval_every == 0) || last) evaluate(bar);
    if (o_.save_every > 0 && state_.step % o_.save_every == 0 && !last) t_.save_state(state_);
  }
  bar.finish();
  set_mode(false);
  finish(device_timer);
  return std::move(result_);
}

// Continues from the state file when there is one.
void Trainer::Fit::restore() {
  std::optional<TrainState> saved;
  try {
    saved = t_.load_state();
  } catch (const std::exception& e) {
    fail(o_.state_path, ": cannot resume from this trainer state (", e.what(),
         "); delete the file to start this training over");
  }
  result_.resumed = saved.has_value();
  if (saved) state_ = std::move(*saved);
}

void Trainer::Fit::start_data_parallel() {
  if (t_.world_ <= 1) return;
  torch::NoGradGuard ng;
  for (auto& t : tensors_) t_.comm_->broadcast(t, 0);  // every rank starts from rank 0's weights
  reducer_ = std::make_unique<dist::GradientAllReducer>(*t_.comm_, tensors_, t_.buckets_);
}

bool Trainer::Fit::stop_requested_on_any_rank() const {
  const bool stop = stop_requested();
  if (t_.world_ <= 1) return stop;
  return t_.comm_->all_reduce_max(stop ? 1.0 : 0.0) > 0;  // every rank stops at the same step
}

void Trainer::Fit::optimizer_step(ProgressBar& bar) {
  const double lr = schedule_.lr(state_.step);
  torch::optim::AdamW& adamw = *t_.opt_->adamw;
  for (std::size_t g = 0; g < adamw.param_groups().size(); ++g)
    static_cast<torch::optim::AdamWOptions&>(adamw.param_groups()[g].options()).lr(lr * t_.opt_->lr_scale[g]);
  drop_gradients(adamw);
  const int64_t n_micro = std::min(o_.grad_accum, total_micro_ - state_.step * o_.grad_accum);
  StepSums sums = forward_backward(n_micro);
  tokens_this_rank_ += sums.tokens;
  if (t_.world_ > 1) reduce_across_ranks(sums);
  const GradientStep g = apply_gradients();
  state_.tokens += sums.tokens;
  tokens_this_process_ += sums.tokens;
  ++state_.step;
  const double elapsed = seconds_since_start();
  Metrics row = {{"step", double(state_.step)},
                 {"loss", sums.loss / double(n_micro * t_.world_)},
                 {"lr", lr},
                 {"grad_norm", g.grad_norm},
                 {"tokens_per_s", elapsed > 0 ? double(tokens_this_process_) / elapsed : 0.0}};
  for (const auto& e : sums.extra) row[e.first] = e.second / double(n_micro);
  if (t_.scaler_) {
    row["loss_scale"] = t_.scaler_->scale();
    row["skipped"] = g.skipped ? 1.0 : 0.0;
  }
  if (log_) log_(o_.label, row);
  bar.update(state_.step, sums.tokens, {{"loss", row["loss"]}, {"lr", lr}});
}

// Forward and backward over the step's micro-batches, gradients accumulating.
Trainer::Fit::StepSums Trainer::Fit::forward_backward(int64_t n_micro) {
  StepSums sums;
  for (int64_t j = 0; j < n_micro; ++j, ++state_.micro_index) {
    const int64_t epoch = state_.micro_index / per_epoch_, b = state_.micro_index % per_epoch_;
    std::vector<int64_t> idx = sampler_.batch(epoch, b);
    if (idx.empty()) continue;  // a rank with no share of a final partial batch
    Batch batch = to_device(data_.training_batch(idx, epoch), t_.device_);
    if (reducer_ && j + 1 == n_micro) reducer_->arm();  // buckets start while backward runs
    Metrics extra;
    at::Tensor loss;
    {
      AutocastGuard autocast(t_.device_, o_.precision);
      loss = loss_fn_(batch, extra);
    }
    const double loss_value = loss.item<double>();  // the one host synchronisation of a micro-batch
    // fp16: an overflow is the loss scaler's to handle (the step is skipped); elsewhere a
    // non-finite loss is a diverged run.
    if (!t_.scaler_ && !std::isfinite(loss_value)) fail_diverged(loss_value, j);
    at::Tensor objective = loss / double(n_micro);
    if (t_.scaler_) objective = t_.scaler_->scale_loss(objective);
    objective.backward();
    sums.loss += loss_value;
    for (const auto& e : extra) sums.extra[e.first] += e.second;
    sums.tokens += batch.tokens;
  }
  return sums;
}

// The state of the last good step is kept for a look (weights, optimizer, data order);
// resuming from it would diverge again, so the run ends here.
void Trainer::Fit::fail_diverged(double loss_value, int64_t micro_batches_done) {
  std::string kept;
  if (!o_.state_path.empty() && t_.rank_ == 0) {
    try {
      TrainState before_step = state_;
      before_step.micro_index -= micro_batches_done;
      t_.save_state(before_step);
      kept = "; the trainer state before that step is saved in " + o_.state_path;
    } catch (const std::exception& e) {
      kept = std::string("; the trainer state could not be saved (") + e.what() + ")";
    }
  }
  fail(o_.label, ": loss became ", std::isnan(loss_value) ? "NaN" : loss_value > 0 ? "+Inf" : "-Inf", " at step ",
       state_.step + 1, " (lower the learning rate?)", kept);
}

// Gradients averaged across ranks; losses and tokens summed, extra metrics averaged.
void Trainer::Fit::reduce_across_ranks(StepSums& sums) {
  reducer_->finish();
  std::vector<double> scalars = {sums.loss, double(sums.tokens)};
  for (const auto& e : sums.extra) scalars.push_back(e.second);
  scalars = t_.comm_->all_reduce_sum(scalars);
  sums.loss = scalars[0];
  sums.tokens = int64_t(scalars[1]);
  size_t k = 2;
  for (auto& e : sums.extra) e.second = scalars[k++] / double(t_.world_);
}

// fp16: gradients unscaled (after the all-reduce, so every rank sees the same inf/NaN and
// skips the same steps) before clipping; a step with inf/NaN is skipped.
Trainer::Fit::GradientStep Trainer::Fit::apply_gradients() {
  GradientStep g;
  g.skipped = t_.scaler_ && t_.scaler_->unscale_and_check(tensors_);
  if (!g.skipped) {
    g.grad_norm = o_.clip_norm > 0 ? torch::nn::utils::clip_grad_norm_(tensors_, o_.clip_norm) : 0.0;
    t_.opt_->adamw->step();
  }
  if (t_.scaler_) {
    t_.scaler_->update(g.skipped);
    OT_REQUIRE(t_.scaler_->scale() >= 1e-20, o_.label, ": fp16 loss scale fell to ", t_.scaler_->scale(), " at step ",
               state_.step + 1,
               " (every recent step overflowed: the run has diverged; lower the learning rate or use bf16)");
  }
  return g;
}

void Trainer::Fit::evaluate(ProgressBar& bar) {
  if (!eval_) return;
  set_mode(false);
  Metrics m;
  {
    torch::NoGradGuard ng;
    AutocastGuard autocast(t_.device_, o_.precision);
    m = eval_();
  }
  set_mode(true);
  m["step"] = double(state_.step);
  state_.evals.push_back(m);
  if (log_) log_(o_.label + "_eval", m);
  keep_if_best(m);
  std::string msg = o_.label + " eval @" + std::to_string(state_.step) + ":";
  for (const auto& kv : m)
    if (kv.first != "step") msg += " " + kv.first + " " + std::to_string(kv.second);
  bar.note(msg);
}

void Trainer::Fit::keep_if_best(const Metrics& m) {
  auto it = m.find(o_.best_metric);
  if (it == m.end()) return;
  const bool better = o_.lower_is_better ? it->second < state_.best_metric : it->second > state_.best_metric;
  if (!better) return;
  state_.best_metric = it->second;
  state_.best_step = state_.step;
  if (o_.keep_best) {
    t_.best_.clear();
    for (auto& p : t_.params_) t_.best_.emplace_back(p.first, p.second.detach().to(torch::kCPU).clone());
  }
}

// The result; a fit that ran to the end restores the best weights and removes its state file.
void Trainer::Fit::finish(gpu::Timer& device_timer) {
  device_timer.stop();
  result_.device_seconds = device_timer.seconds();  // waits for the last kernels
  result_.peak_device_memory_mib = gpu::peak_memory_mib(t_.device_);
  if (t_.scaler_) {
    result_.loss_scale = t_.scaler_->scale();
    result_.skipped_steps = t_.scaler_->skipped_steps();
  }
  const double elapsed = seconds_since_start();
  result_.steps = state_.step;
  result_.tokens = state_.tokens;
  result_.tokens_per_second = elapsed > 0 ? double(tokens_this_process_) / elapsed : 0.0;
  result_.rank_tokens_per_second = elapsed > 0 ? double(tokens_this_rank_) / elapsed : 0.0;
  result_.train_seconds = elapsed;
  if (reducer_) result_.exposed_comm_seconds = reducer_->exposed_comm_seconds();
  result_.best_metric = state_.best_metric;
  result_.best_step = state_.best_step;
  result_.evals = state_.evals;
  if (result_.interrupted) return;
  if (o_.keep_best && !t_.best_.empty()) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < t_.params_.size(); ++i) t_.params_[i].second.copy_(t_.best_[i].second);
  }
  if (!o_.state_path.empty() && t_.rank_ == 0 && file_exists(o_.state_path)) std::remove(o_.state_path.c_str());
}

TrainResult Trainer::fit(const BatchSource& data, const LossFn& loss, const EvalFn& eval, const LogFn& log) {
  return Fit(*this, data, loss, eval, log).run();
}

}  // namespace ot
