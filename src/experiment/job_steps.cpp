// experiment/job_steps.cpp: see job_steps.h.
#include "experiment/job_steps.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "dist/context.h"
#include "model/peft.h"
#include "offsite/layer_selection.h"
#include "offsite/peft_lora.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/gpu.h"
#include "util/memory.h"

namespace ot {

namespace {

results::CurveRow to_row(const Metrics& m) {
  results::CurveRow row;
  auto it = m.find("step");
  if (it != m.end()) row.emplace_back("step", it->second);
  for (const auto& kv : m)
    if (kv.first != "step") row.emplace_back(kv.first, kv.second);
  return row;
}

}  // namespace

Trainer::LogFn recorder_log(results::RunRecorder* rec) {
  return [rec](const std::string& curve, const Metrics& row) {
    if (rec) rec->add_curve_row(curve, to_row(row));
  };
}

void record_alignment(results::RunRecorder* rec, const std::string& setting, const std::string& corpus,
                      const GradientAlignment& a) {
  if (!rec) return;
  record_eval(rec, setting, corpus, "grad_cosine", a.mean_cosine, a.batches);
  const nlohmann::json j = {{"adapter_blocks", a.adapter_blocks}, {"block_cosine", a.block_cosine},
                            {"batches", a.batches}, {"corpus", corpus}};
  rec->set_attribute("gradient_alignment_" + setting, j.dump());
}

void record_cka(results::RunRecorder* rec, const CkaSelection& cka) {
  if (!rec) return;
  std::vector<int64_t> blocks, kept;
  for (size_t i = 0; i < cka.similarity.size(); ++i) blocks.push_back(cka.first_block + static_cast<int64_t>(i));
  for (int64_t k : cka.kept) kept.push_back(cka.first_block + k);
  const nlohmann::json j = {{"blocks", blocks}, {"matrix", cka.similarity}, {"kept", kept}};
  rec->set_attribute("cka_similarity", j.dump());
}

void record_eval(results::RunRecorder* rec, const std::string& setting, const std::string& task,
                 const std::string& metric, double value, int64_t n) {
  if (!rec) return;
  results::EvalRow r;
  r.setting = setting;
  r.task = task;
  r.metric = metric;
  r.value = value;
  r.stderr_value = 0.0;
  r.n = n;
  rec->add_eval(r);
}

void wire_data_parallel(Trainer& trainer, const at::Device& device) {
  if (dist::team().size() > 1) trainer.set_data_parallel(dist::communicator_for(device), dist::bucket_options_from_env());
}

void record_rank_throughput(results::RunRecorder* rec, const TrainResult& r) {
  const dist::Team& t = dist::team();
  std::vector<double> v(static_cast<size_t>(t.size()), 0.0);
  v[static_cast<size_t>(t.rank())] = r.rank_tokens_per_second;
  v = dist::host_communicator().all_reduce_sum(v);
  if (!rec) return;
  for (size_t i = 0; i < v.size(); ++i) rec->set_rank_throughput(static_cast<int64_t>(i), v[i]);
}

void record_device_efficiency(results::RunRecorder& rec, const std::string& pre, const TrainResult& r,
                              double flops_per_token, const c10::Device& device, Precision precision) {
  rec.set_attribute("device_name", gpu::device_name(device));
  rec.set_attribute("precision", precision_name(precision));
  rec.set_efficiency(pre + "device_train_s", r.device_seconds, "s");
  rec.set_efficiency(pre + "flops_per_token", flops_per_token, "FLOP");
  if (device.is_cuda()) rec.set_efficiency(pre + "peak_gpu_memory_mib", r.peak_device_memory_mib, "MiB");
  const double peak = gpu::peak_flops(device, precision_dtype(precision));
  if (peak > 0 && r.device_seconds > 0) {
    const double per_rank_tokens_per_s = r.rank_tokens_per_second * r.train_seconds / r.device_seconds;
    rec.set_efficiency(pre + "mfu", per_rank_tokens_per_s * flops_per_token / peak, "fraction");
  }
  if (r.loss_scale > 0) {
    rec.set_efficiency(pre + "loss_scale", r.loss_scale, "scale");
    rec.set_efficiency(pre + "skipped_steps", double(r.skipped_steps), "steps");
  }
}

EmulatorOptions checked_split(EmulatorOptions emu, int64_t n) {
  OT_REQUIRE(emu.layers >= 0, "--emulator-layers: expected 0 (every middle block) or a count of 1 or more, got ",
             emu.layers);
  const int64_t m = n - emu.bottom - emu.top;
  check_offsite_split(n, emu.bottom, emu.top, emu.layers > 0 ? emu.layers : std::max<int64_t>(m, 1));
  if (emu.layers <= 0) emu.layers = m;
  return emu;
}

void record_layout(results::RunRecorder* rec, const OffsiteLayout& layout, const EmulatorOptions& emu) {
  if (!rec) return;
  rec->set_attribute("num_original_layers", layout.num_original);
  std::string origin;
  for (int64_t b : layout.block_origin) origin += (origin.empty() ? "" : ",") + std::to_string(b);
  rec->set_attribute("block_origin", origin);
  rec->set_attribute("emulator.adapter", std::to_string(layout.bottom) + "," + std::to_string(layout.top));
  rec->set_attribute("emulator.layers", static_cast<int64_t>(layout.middle_kept.size()));
  rec->set_attribute("emulator.strategy", emu.strategy);
  rec->set_attribute("emulator.repeat", int64_t(emu.repeat));
  rec->set_attribute("emulator.prune", emu.prune_ratio);
  rec->set_attribute("emulator.quantize_bits", int64_t(emu.quantize_bits));
  rec->set_attribute("emulator.svd", emu.svd);
  rec->set_attribute("emulator.prune_channels", emu.prune_channels);
  rec->set_attribute("emulator.channel_score", emu.channel_score);
  rec->set_attribute("emulator.gradot_lambda", emu.gradot_lambda);
  rec->set_attribute("emulator.replace_layers", emu.replace_layers);
  rec->set_attribute("emulator.replace_group", emu.replace_group);
  rec->set_attribute("emulator.harmonizer_rank", emu.harmonizer_rank);
}

FinetunePlan plan_finetune(BlockModelImpl& model, const FinetuneJob& job) {
  FinetunePlan plan;
  std::optional<OffsiteLayout> layout;
  if (is_offsite_bundle(model.config())) {
    plan.issued = read_issued_adapter(job.model_dir, model);
    layout = plan.issued->layout;
    OT_REQUIRE(!job.train_head || layout->head, job.model_dir,
               ": --train-head: the bundle does not make the head trainable (the model owner issues it with "
               "`ot emulator --train-head`)");
  }
  if (job.trainable == "all") {
    for (int64_t j = 0; j < model.num_blocks(); ++j) plan.positions.push_back(j);
  } else if (job.trainable == "adapter" || job.trainable == "emulator") {
    OT_REQUIRE(layout.has_value(), job.model_dir, ": --trainable ", job.trainable,
               " needs an offsite bundle (make one with `ot emulator`; for an uncompressed middle use "
               "--emulator-layers equal to the number of middle blocks)");
    for (int64_t j = 0; j < model.num_blocks(); ++j) {
      const int64_t o = model.block_origin()[static_cast<size_t>(j)];
      const bool adapter = layout->is_adapter(o);
      if (job.trainable == "adapter" && adapter && !(job.freeze_bottom && o < layout->bottom))
        plan.positions.push_back(j);
      if (job.trainable == "emulator" && !adapter) plan.positions.push_back(j);
    }
  } else {
    fail("--trainable: '", job.trainable, "' is not a part (expected adapter, all or emulator)");
  }
  OT_REQUIRE(!plan.positions.empty(), "nothing to train (the adapter is empty after --freeze-bottom?)");
  apply_peft(model, plan.positions, job.peft);
  plan.trainable_params = set_trainable(model, plan.positions, job.train_head, job.peft);
  if (job.trainable == "all" && job.peft.method == "none") {
    // Full fine-tuning (and pretraining) trains every parameter, embeddings included, as
    // the paper's ft_all does.
    for (auto& p : model.parameters()) p.set_requires_grad(true);
    plan.trainable_params = model.num_parameters(ModelPart::kAll);
  }
  plan.total_params = model.num_parameters(ModelPart::kAll);
  return plan;
}

NamedTensors trainable_tensors(BlockModelImpl& model) {
  NamedTensors params;
  for (auto& p : model.named_parameters(true))
    if (p.value().requires_grad()) params.emplace_back(p.key(), p.value());
  return params;
}

TrainerOptions finetune_trainer_options(const FinetuneJob& job, bool has_validation) {
  TrainerOptions to = job.trainer;
  to.label = job.label;
  if (!has_validation) to.keep_best = false;
  to.best_metric = "loss";
  to.lower_is_better = true;
  return to;
}

Trainer finetune_trainer(BlockModelImpl& model, const TrainerOptions& to) {
  model.set_activation_checkpointing(to.checkpoint_activations);
  Trainer trainer(trainable_tensors(model), to);
  wire_data_parallel(trainer, model.device());
  trainer.set_mode_callback([&model](bool t) { model.train(t); });
  return trainer;
}

void record_finetune(results::RunRecorder* rec, const FinetuneJob& job, const FinetuneOutcome& out,
                     BlockModelImpl& model, const TrainerOptions& to, double flops_per_token) {
  if (!rec) return;
  const std::string pre = job.label == "finetune" ? "" : job.label + "_";
  rec->set_efficiency(pre + "tokens_per_s", out.train.tokens_per_second, "tokens/s");
  rec->set_efficiency(pre + "exposed_comm_s", out.train.exposed_comm_seconds, "s");
  rec->set_efficiency(pre + "train_s", out.train.train_seconds, "s");
  rec->set_efficiency(pre + "peak_memory_mib", peak_rss_mib(), "MiB");
  rec->set_efficiency(pre + "trainable_params", double(out.trainable_params), "parameters");
  rec->set_efficiency(pre + "total_params", double(out.total_params), "parameters");
  record_device_efficiency(*rec, pre, out.train, flops_per_token, model.device(), to.precision);
}

void write_finetune_output(BlockModelImpl& model, const FinetuneJob& job, const FinetunePlan& plan,
                           FinetuneOutcome& out, results::RunRecorder* rec,
                           const std::function<void(const std::string& tmp_dir)>& save_full) {
  // A LoRA fine-tune of the adapter blocks alone also leaves PEFT's layout, taken before the
  // factors fold into the weights. PEFT's LoRA holds factors only: a trained head or trained
  // emulator blocks have no place in it, so such a run writes none and says why.
  std::optional<PeftLora> peft_export;
  if (plan.bundle() && job.peft.method == "lora") {
    std::string why_not;
    if (job.trainable != "adapter")
      why_not = "trainable " + job.trainable + " trains emulator blocks, which are not the original model's";
    else if (job.train_head)
      why_not = "the head was trained too, and PEFT's LoRA layout holds LoRA factors only";
    if (why_not.empty()) {
      const nlohmann::json& raw = model.config().raw;
      const std::string base = raw.contains("_name_or_path") && raw["_name_or_path"].is_string()
                                   ? raw["_name_or_path"].get<std::string>() : "";
      peft_export = extract_peft_lora(model, plan.positions, job.peft, base);
    } else if (dist::is_writer()) {
      std::cerr << path_join(job.out_dir, kPeftExportDir) << ": no PEFT LoRA export: " << why_not << "\n";
    }
  }
  merge_peft(model);  // LoRA folds into the weights; bottleneck adapters stay as modules
  if (!plan.bundle()) {
    write_on_rank0([&] { write_dir_atomically(job.out_dir, save_full); });
    return;
  }
  std::vector<int64_t> origins;
  for (int64_t j : plan.positions) origins.push_back(model.block_origin()[static_cast<size_t>(j)]);
  nlohmann::json extra = {{"peft", peft_to_json(job.peft)}, {"trainable", job.trainable},
                          {"task", job.task}, {"steps", out.train.steps}};
  if (job.images) extra["images"] = job.images->format + "=" + job.images->path;
  Adapter a = extract_adapter(model, origins, job.train_head, plan.issued->fingerprint,
                              plan.issued->layout.num_original, extra);
  conform_to_issued(a, *plan.issued);
  check_adapter(a, *plan.issued, job.trainable == "adapter" ? AdapterTarget::kFullModel : AdapterTarget::kBundle,
                job.out_dir);  // what the owner will check, checked before it is sent
  write_on_rank0([&] {
    save_adapter(a, job.out_dir, [&](const std::string& tmp) {
      if (!peft_export) return;
      const std::string sub = path_join(tmp, kPeftExportDir);
      std::filesystem::create_directories(sub);
      save_peft_lora(*peft_export, sub);
    });
  });
  out.wrote_peft = peft_export.has_value();
  if (rec && job.hash_files) {
    rec->set_attribute("bundle_sha256", directory_sha256(job.model_dir));
    rec->set_attribute("adapter_sha256", directory_sha256(job.out_dir));
  }
  out.wrote_adapter = true;
}

}  // namespace ot
