// experiment/jobs.cpp: see jobs.h.
#include "experiment/jobs.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <iostream>

#include "data/corpus.h"
#include "data/task_train.h"
#include "data/tasks.h"
#include "dist/context.h"
#include "eval/vocabulary.h"
#include "model/flops.h"
#include "offsite/adapter.h"
#include "offsite/cka.h"
#include "offsite/layer_selection.h"
#include "tokenizer/tokenizer.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/gpu.h"
#include "util/memory.h"
#include "util/signals.h"

namespace ot {

namespace {

// The first `n` examples of another source (evaluation budgets).
class FirstN : public BatchSource {
 public:
  FirstN(std::shared_ptr<BatchSource> inner, int64_t n) : inner_(std::move(inner)), n_(std::min(n, inner_->size())) {}
  int64_t size() const override { return n_; }
  Batch batch(const std::vector<int64_t>& idx) const override { return inner_->batch(idx); }

 private:
  std::shared_ptr<BatchSource> inner_;
  int64_t n_;
};

results::CurveRow to_row(const Metrics& m) {
  results::CurveRow row;
  auto it = m.find("step");
  if (it != m.end()) row.emplace_back("step", it->second);
  for (const auto& kv : m)
    if (kv.first != "step") row.emplace_back(kv.first, kv.second);
  return row;
}

Trainer::LogFn recorder_log(results::RunRecorder* rec) {
  return [rec](const std::string& curve, const Metrics& row) {
    if (rec) rec->add_curve_row(curve, to_row(row));
  };
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

std::string corpus_name(const CorpusSpec& c) {
  std::string base = c.path.substr(c.path.find_last_of('/') + 1);
  return "corpus:" + base;
}

std::string tokenizer_path_for(const std::string& tokenizer, const std::string& model_dir) {
  return tokenizer.empty() ? model_dir : tokenizer;
}

// Data parallelism over the current team (dist/context.h), when it has more than one rank.
void wire_data_parallel(Trainer& trainer, const at::Device& device) {
  if (dist::team().size() > 1) trainer.set_data_parallel(dist::communicator_for(device), dist::bucket_options_from_env());
}

// Every rank's own throughput, gathered (a collective: every rank of the team calls it).
void record_rank_throughput(results::RunRecorder* rec, const TrainResult& r) {
  const dist::Team& t = dist::team();
  std::vector<double> v(static_cast<size_t>(t.size()), 0.0);
  v[static_cast<size_t>(t.rank())] = r.rank_tokens_per_second;
  v = dist::host_communicator().all_reduce_sum(v);
  if (!rec) return;
  for (size_t i = 0; i < v.size(); ++i) rec->set_rank_throughput(static_cast<int64_t>(i), v[i]);
}

// What the device measured of a training stage: its time by device events, the CUDA
// caching allocator's peak, and model FLOP utilisation where the device's peak rate is known.
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

// Only the team's rank 0 writes; the others wait until the files are there.
template <class Fn>
void write_on_rank0(Fn&& fn) {
  if (dist::is_writer()) fn();
  dist::host_communicator().barrier();
}

// The model and its tokenizer files appear together: written one after the other, a kill
// between them left a checkpoint without its tokenizer.
void save_model_and_tokenizer(DecoderLM& model, const std::string& dir, const std::string& tokenizer_from) {
  write_dir_atomically(dir, [&](const std::string& tmp) {
    save_model(model, tmp);
    copy_tokenizer_files(tokenizer_from, tmp);
  });
}

}  // namespace

std::shared_ptr<BatchSource> corpus_blocks(const CorpusSpec& spec, const Tokenizer& tok,
                                           const std::string& tokenizer_path, const std::string& cache_dir) {
  OT_REQUIRE(spec.block_size > 1, "block size must be > 1, got ", spec.block_size);
  CorpusOptions co;
  co.text_field = spec.text_field;
  co.cache_dir = cache_dir;
  co.tokenizer_path = tokenizer_path;
  CorpusTokens t = load_corpus_tokens(spec.path, tok, co);
  if (t.cache_status.rfind("rebuilt: ", 0) == 0 && dist::is_writer())
    std::cerr << "token cache " << t.cache_path << ": " << t.cache_status.substr(9) << "; rebuilt\n";
  OT_REQUIRE(static_cast<int64_t>(t.ids.size()) >= 2, spec.path, ": fewer than 2 tokens of text");
  std::shared_ptr<BatchSource> src = std::make_shared<LmBlockSource>(std::move(t.ids), spec.block_size);
  if (spec.max_blocks > 0) src = std::make_shared<FirstN>(src, spec.max_blocks);
  return src;
}

void record_results(results::RunRecorder& rec, const std::string& setting, const std::vector<TaskResult>& results) {
  for (const TaskResult& r : results) {
    results::EvalRow row;
    row.setting = setting;
    row.task = r.task;
    row.metric = r.metric;
    row.value = r.value;
    row.stderr_value = r.std_error.value_or(0.0);
    row.n = r.n;
    rec.add_eval(row);
  }
}

std::unique_ptr<results::RunRecorder> open_recorder(const std::string& path, const std::string& experiment,
                                                    const std::string& command_line, const std::string& config_text) {
  if (path.empty() || !dist::is_writer()) return nullptr;  // one file per run: the team's rank 0 writes it
  results::RunInfo info;
  info.world_size = dist::team().size();
  std::string file = path.substr(path.find_last_of('/') + 1);
  info.run_id = file.substr(0, file.rfind(".h5"));
  info.experiment = experiment;
  info.config_toml = config_text;
  info.command_line = command_line;
  info.libtorch_version = TORCH_VERSION;
  return std::make_unique<results::RunRecorder>(path, info);
}

namespace {

// The emulator options with the adapter split checked against n blocks and `layers` 0
// resolved to every middle block.
EmulatorOptions checked_split(EmulatorOptions emu, int64_t n) {
  OT_REQUIRE(emu.layers >= 0, "--emulator-layers: expected 0 (every middle block) or a count of 1 or more, got ",
             emu.layers);
  const int64_t m = n - emu.bottom - emu.top;
  check_offsite_split(n, emu.bottom, emu.top, emu.layers > 0 ? emu.layers : std::max<int64_t>(m, 1));
  if (emu.layers <= 0) emu.layers = m;
  return emu;
}

void record_layout(results::RunRecorder* rec, const OffsiteLayout& layout) {
  if (!rec) return;
  rec->set_attribute("num_original_layers", layout.num_original);
  std::string origin;
  for (int64_t b : layout.block_origin) origin += (origin.empty() ? "" : ",") + std::to_string(b);
  rec->set_attribute("block_origin", origin);
}

// A vision encoder's emulator: the same split, layer selection, repetition, pruning and
// quantisation as a decoder's. The data-driven steps (CKA selection, distillation, the
// emulator's perplexity) read text corpora, so they are refused by name for an encoder.
EmulatorOutcome run_vision_emulator_job(const EmulatorJob& job, results::RunRecorder* rec) {
  auto refuse_text = [&](bool asked, const char* option) {
    OT_REQUIRE(!asked, job.model_dir, ": ", option,
               " reads a text corpus, which a vision encoder cannot take; build its emulator without it "
               "(layer selection by uniform, floor or an index list, --repeat, --prune, --quantize)");
  };
  refuse_text(job.distill.has_value(), "--distill");
  refuse_text(job.eval.has_value(), "--eval-corpus");
  refuse_text(job.calibration.has_value() || job.emulator.strategy == "cka", "--strategy cka / --calibration");
  EmulatorOutcome out;
  reset_peak_rss();
  VisionEncoder full = load_vision_model(job.model_dir, job.load);
  const int64_t n = full->num_blocks();
  const EmulatorOptions emu = checked_split(job.emulator, n);
  out.layout = make_layout(n, emu, select_middle_blocks(n - emu.bottom - emu.top, emu.layers, emu.strategy));
  VisionEncoder bundle = build_bundle(full, out.layout, emu);
  record_layout(rec, out.layout);
  write_on_rank0([&] {
    write_dir_atomically(job.out_dir, [&](const std::string& tmp) {
      save_model(bundle, tmp);
      // The image processor's settings travel with the bundle, as a tokenizer does.
      const std::string processor = path_join(job.model_dir, "preprocessor_config.json");
      if (file_exists(processor))
        write_text_file_atomically(path_join(tmp, "preprocessor_config.json"), read_text_file(processor));
    });
  });
  if (rec && job.hash_files) rec->set_attribute("bundle_sha256", directory_sha256(job.out_dir));
  return out;
}

}  // namespace

EmulatorOutcome run_emulator_job(const EmulatorJob& job, results::RunRecorder* rec) {
  if (is_vision_model_dir(job.model_dir)) return run_vision_emulator_job(job, rec);
  EmulatorOutcome out;
  reset_peak_rss();  // this stage's peak_memory_mib, not the process's so far
  DecoderLM full = load_model(job.model_dir, job.load);
  const int64_t n = full->num_blocks();
  const EmulatorOptions emu = checked_split(job.emulator, n);
  const int64_t m = n - emu.bottom - emu.top;

  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path = tokenizer_path_for(job.tokenizer, job.model_dir);
  if (job.calibration || job.distill || job.eval) tok = load_tokenizer(tok_path);

  std::vector<int64_t> kept;
  if (emu.strategy == "cka") {
    OT_REQUIRE(job.calibration.has_value(), "--strategy cka: needs --calibration CORPUS");
    auto src = corpus_blocks(*job.calibration, *tok, tok_path, job.cache_dir);
    std::vector<Batch> batches;
    const int64_t blocks = std::min<int64_t>(src->size(), job.calibration->max_blocks > 0 ? job.calibration->max_blocks : 16);
    for (int64_t i = 0; i < blocks; i += 4) {
      std::vector<int64_t> idx;
      for (int64_t j = i; j < std::min(blocks, i + 4); ++j) idx.push_back(j);
      batches.push_back(src->batch(idx));
    }
    kept = cka_select_middle_blocks(full, emu.bottom, emu.top, emu.layers, batches);
  } else {
    kept = select_middle_blocks(m, emu.layers, emu.strategy);
  }
  out.layout = make_layout(n, emu, kept);
  DecoderLM bundle = build_bundle(full, out.layout, emu);
  record_layout(rec, out.layout);

  std::shared_ptr<BatchSource> eval_src;
  if (job.eval) eval_src = corpus_blocks(*job.eval, *tok, tok_path, job.cache_dir);
  auto ppl = [&](DecoderLM& mdl) {
    AutocastGuard autocast(mdl->device(), job.trainer.precision);
    return std::exp(mean_loss(mdl, *eval_src, job.trainer.batch_size, dist::host_communicator()));
  };
  if (eval_src) {
    out.full_ppl = ppl(full);
    out.zs_emulator_ppl = ppl(bundle);
    if (job.record_perplexities) {
      record_eval(rec, "zs_full", corpus_name(*job.eval), "ppl", *out.full_ppl, eval_src->size());
      record_eval(rec, "zs_emulator", corpus_name(*job.eval), "ppl", *out.zs_emulator_ppl, eval_src->size());
    }
  }

  nlohmann::json section = offsite_section(out.layout, emu, model_fingerprint(*full));
  if (job.distill) {
    auto train_src = corpus_blocks(*job.distill, *tok, tok_path, job.cache_dir);
    bundle->set_activation_checkpointing(job.trainer.checkpoint_activations);
    Distiller d(bundle, full, out.layout, job.distill_loss);
    TrainerOptions to = job.trainer;
    to.label = "distill";
    if (eval_src) {
      to.best_metric = "emulator_ppl";
      to.lower_is_better = lower_is_better(to.best_metric);
    } else {
      to.keep_best = false;
    }
    Trainer trainer(d.trainable(), to);
    wire_data_parallel(trainer, full->device());
    trainer.set_mode_callback([&](bool t) { bundle->train(t); });
    Trainer::EvalFn eval;
    // The plug-in (full model with the still untouched adapter) does not change while only
    // the emulator trains; it is logged beside the emulator as the paper's script does.
    if (eval_src) eval = [&] { return Metrics{{"emulator_ppl", ppl(bundle)}, {"plugin_ppl", *out.full_ppl}}; };
    out.train = trainer.fit(*train_src, [&](const Batch& b, Metrics& extra) { return d.loss(b, extra); }, eval,
                            recorder_log(rec));
    if (out.train.interrupted) throw Preempted("distillation", to.state_path);
    bundle->eval();
    if (eval_src) {
      out.distilled_emulator_ppl = ppl(bundle);
      if (job.record_perplexities)
        record_eval(rec, "distilled_emulator", corpus_name(*job.eval), "ppl", *out.distilled_emulator_ppl, eval_src->size());
    }
    section["distill"] = {{"corpus", job.distill->path}, {"steps", out.train.steps},
                          {"lm_weight", job.distill_loss.lm_weight}, {"kd_weight", job.distill_loss.kd_weight},
                          {"best_step", out.train.best_step}};
    if (rec) {
      rec->set_efficiency("distill_tokens_per_s", out.train.tokens_per_second, "tokens/s");
      rec->set_efficiency("distill_exposed_comm_s", out.train.exposed_comm_seconds, "s");
      rec->set_efficiency("distill_train_s", out.train.train_seconds, "s");
      rec->set_efficiency("distill_peak_memory_mib", peak_rss_mib(), "MiB");
      record_device_efficiency(*rec, "distill_", out.train, training_flops_per_token(bundle, job.distill->block_size),
                               bundle->device(), job.trainer.precision);
    }
  }
  if (job.distill) record_rank_throughput(rec, out.train);
  bundle->set_config_entry("offsite", section);
  write_on_rank0([&] {
    save_model_and_tokenizer(bundle, job.out_dir, tokenizer_path_for(job.tokenizer, job.model_dir));  // ships with the bundle
  });
  if (rec && job.hash_files) rec->set_attribute("bundle_sha256", directory_sha256(job.out_dir));
  return out;
}

FinetuneOutcome run_finetune_job(const FinetuneJob& job, results::RunRecorder* rec) {
  FinetuneOutcome out;
  reset_peak_rss();  // this stage's peak_memory_mib, not the process's so far
  DecoderLM model = load_model(job.model_dir, job.load);
  const bool bundle = is_offsite_bundle(model->config());
  // A bundle is checked against itself before it is trained on: block map, stored blocks and
  // fingerprint (a damaged or altered bundle is an error, not a different model).
  std::optional<IssuedAdapter> issued;
  std::optional<OffsiteLayout> layout;
  if (bundle) {
    issued = read_issued_adapter(job.model_dir, *model);
    layout = issued->layout;
    OT_REQUIRE(!job.train_head || layout->head, job.model_dir,
               ": --train-head: the bundle does not make the head trainable (the model owner issues it with "
               "`ot emulator --train-head`)");
  }

  std::vector<int64_t> positions;
  if (job.trainable == "all") {
    for (int64_t j = 0; j < model->num_blocks(); ++j) positions.push_back(j);
  } else if (job.trainable == "adapter" || job.trainable == "emulator") {
    OT_REQUIRE(bundle, job.model_dir, ": --trainable ", job.trainable,
               " needs an offsite bundle (make one with `ot emulator`; for an uncompressed middle use "
               "--emulator-layers equal to the number of middle blocks)");
    for (int64_t j = 0; j < model->num_blocks(); ++j) {
      const int64_t o = model->block_origin()[static_cast<size_t>(j)];
      const bool adapter = layout->is_adapter(o);
      if (job.trainable == "adapter" && adapter && !(job.freeze_bottom && o < layout->bottom)) positions.push_back(j);
      if (job.trainable == "emulator" && !adapter) positions.push_back(j);
    }
  } else {
    fail("--trainable: '", job.trainable, "' is not a part (expected adapter, all or emulator)");
  }
  OT_REQUIRE(!positions.empty(), "nothing to train (the adapter is empty after --freeze-bottom?)");
  apply_peft(model, positions, job.peft);
  out.trainable_params = set_trainable(model, positions, job.train_head, job.peft);
  if (job.trainable == "all" && job.peft.method == "none") {
    // Full fine-tuning (and pretraining) trains every parameter, embeddings included, as
    // the paper's ft_all does.
    for (auto& p : model->parameters()) p.set_requires_grad(true);
    out.trainable_params = model->num_parameters(ModelPart::kAll);
  }
  out.total_params = model->num_parameters(ModelPart::kAll);

  const std::string tok_path = tokenizer_path_for(job.tokenizer, job.model_dir);
  std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
  std::shared_ptr<BatchSource> train_src, val_src;
  std::string eval_name;
  if (!job.task.empty()) {
    OT_REQUIRE(!job.train_file.empty(), "--task ", job.task, ": needs --train-file");
    TaskReadOptions ro;
    ro.build_eval = false;
    ro.skip_malformed = job.skip_malformed;
    TaskData td = load_task(job.task, job.train_file, ro);
    if (td.skipped > 0)
      std::cerr << job.train_file << ": skipped " << td.skipped << " malformed record(s) of " << td.records
                << " (first: " << td.skip_messages.front() << ")\n";
    if (rec && td.skipped > 0) rec->set_attribute("skipped_records", td.skipped);
    auto train = std::move(td.train_docs);
    std::vector<TaskDoc> val;
    if (!job.validation_file.empty()) {
      val = load_task(job.task, job.validation_file, ro).train_docs;
    } else {
      auto split = split_validation(train, 5);
      train = std::move(split.train);
      val = std::move(split.validation);
    }
    TaskTrainOptions to;
    to.block_size = job.block_size;
    to.prefix_token = job.prefix_token;
    to.pad_id = model->config().pad_token_id.value_or(0);
    train_src = std::make_shared<TaskTrainSource>(train, *tok, to);
    if (!val.empty()) val_src = std::make_shared<TaskTrainSource>(val, *tok, to);
    eval_name = canonical_task_name(job.task);
  } else {
    OT_REQUIRE(job.corpus.has_value(), "fine-tuning needs --task NAME with --train-file, or --corpus FILE");
    train_src = corpus_blocks(*job.corpus, *tok, tok_path, job.cache_dir);
    if (job.eval_corpus) val_src = corpus_blocks(*job.eval_corpus, *tok, tok_path, job.cache_dir);
    eval_name = corpus_name(job.eval_corpus ? *job.eval_corpus : *job.corpus);
  }

  NamedTensors params;
  for (auto& p : model->named_parameters(true))
    if (p.value().requires_grad()) params.emplace_back(p.key(), p.value());
  TrainerOptions to = job.trainer;
  to.label = job.label;
  if (!val_src) to.keep_best = false;
  to.best_metric = "loss";
  to.lower_is_better = lower_is_better(to.best_metric);
  model->set_activation_checkpointing(to.checkpoint_activations);
  Trainer trainer(params, to);
  wire_data_parallel(trainer, model->device());
  trainer.set_mode_callback([&](bool t) { model->train(t); });
  Trainer::EvalFn eval;
  if (val_src)
    eval = [&] {
      double l = mean_loss(model, *val_src, job.trainer.batch_size, dist::host_communicator(), job.max_eval_examples);
      return Metrics{{"loss", l}, {"ppl", std::exp(l)}};
    };
  auto loss = [&](const Batch& b, Metrics&) {
    return causal_lm_loss(model->forward(b.input_ids, b.attention_mask).logits, b.labels);
  };
  out.train = trainer.fit(*train_src, loss, eval, recorder_log(rec));
  if (out.train.interrupted) throw Preempted("fine-tuning", to.state_path);
  model->eval();
  if (rec) {
    const std::string pre = job.label == "finetune" ? "" : job.label + "_";
    rec->set_efficiency(pre + "tokens_per_s", out.train.tokens_per_second, "tokens/s");
    rec->set_efficiency(pre + "exposed_comm_s", out.train.exposed_comm_seconds, "s");
    rec->set_efficiency(pre + "train_s", out.train.train_seconds, "s");
    rec->set_efficiency(pre + "peak_memory_mib", peak_rss_mib(), "MiB");
    rec->set_efficiency(pre + "trainable_params", double(out.trainable_params), "parameters");
    rec->set_efficiency(pre + "total_params", double(out.total_params), "parameters");
    record_device_efficiency(*rec, pre, out.train, training_flops_per_token(model, job.corpus ? job.corpus->block_size : job.block_size),
                             model->device(), to.precision);
    if (val_src && out.train.best_step >= 0 && job.record_validation)
      record_eval(rec, bundle ? "ft_emulator" : "ft_full", eval_name, "validation_loss", out.train.best_metric, val_src->size());
  }

  record_rank_throughput(rec, out.train);
  merge_peft(model);  // LoRA folds into the weights; bottleneck adapters stay as modules
  if (bundle) {
    std::vector<int64_t> origins;
    for (int64_t j : positions) origins.push_back(model->block_origin()[static_cast<size_t>(j)]);
    nlohmann::json extra = {{"peft", peft_to_json(job.peft)}, {"trainable", job.trainable},
                            {"task", job.task}, {"steps", out.train.steps}};
    Adapter a = extract_adapter(*model, origins, job.train_head, issued->fingerprint, layout->num_original, extra);
    conform_to_issued(a, *issued);
    check_adapter(a, *issued, job.trainable == "adapter" ? AdapterTarget::kFullModel : AdapterTarget::kBundle,
                  job.out_dir);  // what the owner will check, checked before it is sent
    write_on_rank0([&] { save_adapter(a, job.out_dir); });
    if (rec && job.hash_files) {
      rec->set_attribute("bundle_sha256", directory_sha256(job.model_dir));
      rec->set_attribute("adapter_sha256", directory_sha256(job.out_dir));
    }
    out.wrote_adapter = true;
  } else {
    write_on_rank0([&] {
      save_model_and_tokenizer(model, job.out_dir, tok_path);
    });
  }
  return out;
}

}  // namespace ot
