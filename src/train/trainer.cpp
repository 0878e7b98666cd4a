// train/trainer.cpp: see trainer.h.
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/statvfs.h>
#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/sampler.h"
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
  std::vector<at::Tensor> tensors;
  for (auto& p : params_) tensors.push_back(p.second);
  opt_ = std::make_shared<OptimizerHolder>();
  opt_->adamw = make_adamw(tensors, o_);
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

nlohmann::json evals_to_json(const std::vector<Metrics>& evals) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& m : evals) {
    nlohmann::json row = nlohmann::json::object();
    for (const auto& [k, v] : m) row[k] = number_to_json(v);
    j.push_back(row);
  }
  return j;
}
}  // namespace

void Trainer::save_state(int64_t step, int64_t micro, int64_t tokens, double best, int64_t best_step,
                         const std::vector<Metrics>& evals) {
  if (o_.state_path.empty() || rank_ != 0) return;
  torch::NoGradGuard ng;
  torch::serialize::OutputArchive ar;
  nlohmann::json meta = {{"format", "offsite-trainer-state"}, {"version", 1}, {"step", step},
                         {"micro", micro}, {"tokens", tokens}, {"best", number_to_json(best)}, {"best_step", best_step},
                         {"evals", evals_to_json(evals)}, {"label", o_.label},
                         {"precision", precision_name(o_.precision)}};
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

bool Trainer::load_state(int64_t& step, int64_t& micro, int64_t& tokens, double& best, int64_t& best_step,
                         std::vector<Metrics>& evals) {
  if (o_.state_path.empty() || !file_exists(o_.state_path)) return false;
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
  step = meta["step"].get<int64_t>();
  micro = meta["micro"].get<int64_t>();
  tokens = meta["tokens"].get<int64_t>();
  best = number_from_json(meta["best"]);
  best_step = meta["best_step"].get<int64_t>();
  evals.clear();
  for (const auto& e : meta["evals"]) {
    Metrics m;
    for (const auto& [k, v] : e.items()) m[k] = number_from_json(v);
    evals.push_back(m);
  }
  return true;
}

TrainResult Trainer::fit(const BatchSource& data, const LossFn& loss_fn, const EvalFn& eval, const LogFn& log) {
  SamplerOptions so;
  so.num_examples = data.size();
  so.batch_size = o_.batch_size;
  so.seed = o_.seed;
  so.rank = rank_;
  so.world_size = world_;
  so.drop_last = o_.drop_last;
  EpochSampler sampler(so);
  const int64_t per_epoch = sampler.batches_per_epoch();
  OT_REQUIRE(per_epoch > 0, o_.label, ": ", data.size(), " examples make no batch of ", o_.batch_size * world_);
  const int64_t total_micro = o_.max_steps > 0 ? o_.max_steps * o_.grad_accum : o_.epochs * per_epoch;
  const int64_t total_steps = (total_micro + o_.grad_accum - 1) / o_.grad_accum;
  LrSchedule sched{o_.schedule, o_.lr, o_.warmup_steps, total_steps};

  TrainResult r;
  r.total_steps = total_steps;
  int64_t step = 0, micro = 0, tokens = 0, best_step = -1;
  double best = o_.lower_is_better ? INFINITY : -INFINITY;
  try {
    r.resumed = load_state(step, micro, tokens, best, best_step, r.evals);
  } catch (const std::exception& e) {
    fail(o_.state_path, ": cannot resume from this trainer state (", e.what(),
         "); delete the file to start this training over");
  }

  std::vector<at::Tensor> tensors;
  for (auto& p : params_) tensors.push_back(p.second);
  std::unique_ptr<dist::GradientAllReducer> reducer;
  if (world_ > 1) {
    torch::NoGradGuard ng;
    for (auto& t : tensors) comm_->broadcast(t, 0);  // every rank starts from rank 0's weights
    reducer = std::make_unique<dist::GradientAllReducer>(*comm_, tensors, buckets_);
  }
  auto set_mode = [&](bool training) { if (mode_fn_) mode_fn_(training); };

  auto run_eval = [&](int64_t at_step) {
    if (!eval) return;
    set_mode(false);
    Metrics m;
    {
      torch::NoGradGuard ng;
      AutocastGuard autocast(device_, o_.precision);
      m = eval();
    }
    set_mode(true);
    m["step"] = double(at_step);
    r.evals.push_back(m);
    if (log) log(o_.label + "_eval", m);
    auto it = m.find(o_.best_metric);
    if (it != m.end()) {
      bool better = o_.lower_is_better ? it->second < best : it->second > best;
      if (better) {
        best = it->second;
        best_step = at_step;
        if (o_.keep_best) {
          best_.clear();
          for (auto& p : params_) best_.emplace_back(p.first, p.second.detach().to(torch::kCPU).clone());
        }
      }
    }
  };

  ProgressBar bar(o_.label, total_steps);
  if (r.resumed) bar.note(o_.label + ": resumed from " + o_.state_path + " at step " + std::to_string(step));
  set_mode(true);
  gpu::reset_peak_memory(device_);
  gpu::Timer device_timer(device_);
  device_timer.start();
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_this_process = 0, tokens_this_rank = 0;
  for (; step < total_steps; ++step) {
    bool stop = stop_requested();
    if (world_ > 1) stop = comm_->all_reduce_max(stop ? 1.0 : 0.0) > 0;  // every rank stops at the same step
    if (stop) {
      save_state(step, micro, tokens, best, best_step, r.evals);
      r.interrupted = true;
      break;
    }
    const double lr = sched.lr(step);
    for (auto& g : opt_->adamw->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt_->adamw->zero_grad();
    const int64_t n_micro = std::min(o_.grad_accum, total_micro - step * o_.grad_accum);
    double loss_sum = 0.0;
    int64_t step_tokens = 0;
    Metrics extra_sum;
    for (int64_t j = 0; j < n_micro; ++j, ++micro) {
      const int64_t epoch = micro / per_epoch, b = micro % per_epoch;
      std::vector<int64_t> idx = sampler.batch(epoch, b);
      if (idx.empty()) continue;  // a rank with no share of a final partial batch
      Batch batch = to_device(data.batch(idx), device_);
      if (reducer && j + 1 == n_micro) reducer->arm();  // buckets start while backward runs
      Metrics extra;
      at::Tensor loss;
      {
        AutocastGuard autocast(device_, o_.precision);
        loss = loss_fn(batch, extra);
      }
      const double loss_value = loss.item<double>();  // the one host synchronisation of a micro-batch
      // fp16: an overflow is the loss scaler's to handle (the step is skipped); elsewhere a
      // non-finite loss is a diverged run.
      if (!scaler_ && !std::isfinite(loss_value)) {
        // The state of the last good step is kept for a look (weights, optimizer, data order);
        // resuming from it would diverge again, so the run ends here.
        std::string kept;
        if (!o_.state_path.empty() && rank_ == 0) {
          try {
            save_state(step, micro - j, tokens, best, best_step, r.evals);
            kept = "; the trainer state before that step is saved in " + o_.state_path;
          } catch (const std::exception& e) {
            kept = std::string("; the trainer state could not be saved (") + e.what() + ")";
          }
        }
        fail(o_.label, ": loss became ", std::isnan(loss_value) ? "NaN" : loss_value > 0 ? "+Inf" : "-Inf", " at step ",
             step + 1, " (lower the learning rate?)", kept);
      }
      at::Tensor objective = loss / double(n_micro);
      if (scaler_) objective = scaler_->scale_loss(objective);
      objective.backward();
      loss_sum += loss_value;
      for (const auto& e : extra) extra_sum[e.first] += e.second;
      step_tokens += batch.tokens;
    }
    std::vector<double> scalars = {loss_sum, double(step_tokens)};
    tokens_this_rank += step_tokens;
    if (world_ > 1) {
      reducer->finish();  // gradients averaged across ranks
      for (const auto& e : extra_sum) scalars.push_back(e.second);
      scalars = comm_->all_reduce_sum(scalars);
      size_t k = 2;
      for (auto& e : extra_sum) e.second = scalars[k++] / double(world_);
    }
    // fp16: gradients unscaled (after the all-reduce, so every rank sees the same inf/NaN
    // and skips the same steps) before clipping; a step with inf/NaN is skipped.
    const bool found_inf = scaler_ && scaler_->unscale_and_check(tensors);
    double grad_norm = 0.0;
    if (!found_inf) {
      grad_norm = o_.clip_norm > 0 ? torch::nn::utils::clip_grad_norm_(tensors, o_.clip_norm) : 0.0;
      opt_->adamw->step();
    }
    if (scaler_) {
      scaler_->update(found_inf);
      OT_REQUIRE(scaler_->scale() >= 1e-20, o_.label, ": fp16 loss scale fell to ", scaler_->scale(), " at step ",
                 step + 1, " (every recent step overflowed: the run has diverged; lower the learning rate or use bf16)");
    }
    tokens += int64_t(scalars[1]);
    tokens_this_process += int64_t(scalars[1]);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Metrics row = {{"step", double(step + 1)},
                   {"loss", scalars[0] / double(n_micro * world_)},
                   {"lr", lr},
                   {"grad_norm", grad_norm},
                   {"tokens_per_s", elapsed > 0 ? double(tokens_this_process) / elapsed : 0.0}};
    for (const auto& e : extra_sum) row[e.first] = e.second / double(n_micro);
    if (scaler_) {
      row["loss_scale"] = scaler_->scale();
      row["skipped"] = found_inf ? 1.0 : 0.0;
    }
    if (log) log(o_.label, row);
    bar.update(step + 1, int64_t(scalars[1]), {{"loss", row["loss"]}, {"lr", lr}});
    const bool last = step + 1 == total_steps;
    if ((o_.eval_every > 0 && (step + 1) % o_.eval_every == 0) || last) {
      run_eval(step + 1);
      if (!r.evals.empty() && r.evals.back()["step"] == double(step + 1)) {
        std::string msg = o_.label + " eval @" + std::to_string(step + 1) + ":";
        for (const auto& kv : r.evals.back())
          if (kv.first != "step") msg += " " + kv.first + " " + std::to_string(kv.second);
        bar.note(msg);
      }
    }
    if (o_.save_every > 0 && (step + 1) % o_.save_every == 0 && !last)
      save_state(step + 1, micro, tokens, best, best_step, r.evals);
  }
  bar.finish();
  set_mode(false);
  device_timer.stop();
  r.device_seconds = device_timer.seconds();  // waits for the last kernels
  r.peak_device_memory_mib = gpu::peak_memory_mib(device_);
  if (scaler_) {
    r.loss_scale = scaler_->scale();
    r.skipped_steps = scaler_->skipped_steps();
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.steps = step;
  r.tokens = tokens;
  r.tokens_per_second = elapsed > 0 ? double(tokens_this_process) / elapsed : 0.0;
  r.rank_tokens_per_second = elapsed > 0 ? double(tokens_this_rank) / elapsed : 0.0;
  r.train_seconds = elapsed;
  if (reducer) r.exposed_comm_seconds = reducer->exposed_comm_seconds();
  r.best_metric = best;
  r.best_step = best_step;
  if (!r.interrupted) {
    if (o_.keep_best && !best_.empty()) {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < params_.size(); ++i) params_[i].second.copy_(best_[i].second);
    }
    if (!o_.state_path.empty() && rank_ == 0 && file_exists(o_.state_path)) std::remove(o_.state_path.c_str());
  }
  return r;
}

}  // namespace ot
