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
#include "experiment/job_steps.h"
#include "model/flops.h"
#include "offsite/adapter.h"
#include "offsite/channel_pruning.h"
#include "offsite/cka.h"
#include "offsite/layer_replacement.h"
#include "offsite/rank_compression.h"
#include "tokenizer/tokenizer.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"
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

std::string corpus_name(const CorpusSpec& c) {
  std::string base = c.path.substr(c.path.find_last_of('/') + 1);
  return "corpus:" + base;
}

std::string tokenizer_path_for(const std::string& tokenizer, const std::string& model_dir) {
  return tokenizer.empty() ? model_dir : tokenizer;
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

EmulatorOutcome run_emulator_job(const EmulatorJob& job, results::RunRecorder* rec) {
  if (is_vision_model_dir(job.model_dir)) return run_vision_emulator_job(job, rec);
  EmulatorOutcome out;
  reset_peak_rss();  // this stage's peak_memory_mib, not the process's so far
  OT_REQUIRE(job.emulator.replace_layers.empty() || job.distill, "--replace-layers: harmonizers start as the "
             "identity and are trained by distillation; give --distill CORPUS");
  DecoderLM full = load_model(job.model_dir, job.load);
  const int64_t n = full->num_blocks();
  const EmulatorOptions emu = checked_split(job.emulator, n);
  const int64_t m = n - emu.bottom - emu.top;

  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path = tokenizer_path_for(job.tokenizer, job.model_dir);
  if (job.calibration || job.distill || job.eval) tok = load_tokenizer(tok_path);

  // Calibration text (CKA selection, block importance, gradot channel scores): its first
  // blocks, 4 per batch.
  std::vector<Batch> calibration;
  if (job.calibration) {
    auto src = corpus_blocks(*job.calibration, *tok, tok_path, job.cache_dir);
    const int64_t blocks = std::min<int64_t>(src->size(), job.calibration->max_blocks > 0 ? job.calibration->max_blocks : 16);
    for (int64_t i = 0; i < blocks; i += 4) {
      std::vector<int64_t> idx;
      for (int64_t j = i; j < std::min(blocks, i + 4); ++j) idx.push_back(j);
      calibration.push_back(src->batch(idx));
    }
  }
  std::vector<int64_t> kept;
  if (emu.strategy == "cka") {
    OT_REQUIRE(job.calibration.has_value(), "--strategy cka: needs --calibration CORPUS");
    const CkaSelection cka = cka_select_middle_blocks(full, emu.bottom, emu.top, emu.layers, calibration);
    record_cka(rec, cka);
    kept = cka.kept;
  } else {
    kept = select_middle_blocks(m, emu.layers, emu.strategy);
  }
  out.layout = make_layout(n, emu, kept);
  DecoderLM bundle = build_bundle(full, out.layout, emu);
  const LayerReplacement replacement = replace_emulator_layers(*full, *bundle, out.layout, emu, calibration, job.trainer.seed);
  const std::vector<int64_t> mlp_widths = prune_emulator_channels(*bundle, out.layout, emu, calibration);
  const nlohmann::json svd_ranks = emu.svd > 0.0 ? compress_emulator_ranks(*bundle, out.layout, emu.svd) : nlohmann::json();
  record_layout(rec, out.layout, emu);

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

  // Gradient alignment: the first report_batches batches of the eval (else distillation) corpus.
  std::vector<Batch> report;
  std::string report_corpus;
  if (job.report_batches > 0) {
    OT_REQUIRE(job.eval || job.distill, "--report: gradient alignment needs batches: give --eval-corpus or --distill");
    const CorpusSpec& spec = job.eval ? *job.eval : *job.distill;
    const auto src = job.eval ? eval_src : corpus_blocks(spec, *tok, tok_path, job.cache_dir);
    report_corpus = corpus_name(spec);
    for (int64_t i = 0; i < job.report_batches && i * job.trainer.batch_size < src->size(); ++i) {
      std::vector<int64_t> idx;
      for (int64_t j = i * job.trainer.batch_size; j < std::min(src->size(), (i + 1) * job.trainer.batch_size); ++j)
        idx.push_back(j);
      report.push_back(src->batch(idx));
    }
  }
  auto measure_alignment = [&](const std::string& setting) {
    AutocastGuard autocast(full->device(), job.trainer.precision);
    GradientAlignment a = gradient_alignment(*bundle, *full, out.layout, report);
    record_alignment(rec, setting, report_corpus, a);
    return a;
  };
  if (!report.empty()) out.zs_alignment = measure_alignment("zs_emulator");

  nlohmann::json section = offsite_section(out.layout, emu, model_fingerprint(*full));
  if (emu.prune_channels > 0.0) section["mlp_channels"] = mlp_widths;
  if (emu.svd > 0.0) section["svd_ranks"] = svd_ranks;
  if (!replacement.ranks.is_null()) {
    section["harmonizer_ranks"] = replacement.ranks;
    section["emulator"]["layer_replacement"] = replacement.record;
  }
  if (job.distill) {
    auto train_src = corpus_blocks(*job.distill, *tok, tok_path, job.cache_dir);
    bundle->set_activation_checkpointing(job.trainer.checkpoint_activations);
    Distiller d(bundle.ptr(), full.ptr(), out.layout, job.distill_loss);
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
      // An evaluation at the last step that was also the best scored these very weights on
      // the same text (kept or not, they are the last step's): its value is theirs.
      const bool last_was_scored = out.train.best_step >= 0 && out.train.best_step == out.train.steps;
      out.distilled_emulator_ppl = last_was_scored ? out.train.best_metric : ppl(bundle);
      if (job.record_perplexities)
        record_eval(rec, "distilled_emulator", corpus_name(*job.eval), "ppl", *out.distilled_emulator_ppl, eval_src->size());
    }
    section["distill"] = {{"corpus", job.distill->path}, {"steps", out.train.steps},
                          {"lm_weight", job.distill_loss.lm_weight}, {"kd_weight", job.distill_loss.kd_weight},
                          {"layerwise_kd", job.distill_loss.layerwise},
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
  if (job.distill && !report.empty()) out.distilled_alignment = measure_alignment("distilled_emulator");
  bundle->set_config_entry("offsite", section);
  write_on_rank0([&] {
    save_model_and_tokenizer(bundle, job.out_dir, tokenizer_path_for(job.tokenizer, job.model_dir));  // ships with the bundle
  });
  if (rec && job.hash_files) rec->set_attribute("bundle_sha256", directory_sha256(job.out_dir));
  return out;
}

FinetuneOutcome run_finetune_job(const FinetuneJob& job, results::RunRecorder* rec) {
  if (is_vision_model_dir(job.model_dir)) return run_vision_finetune_job(job, rec);
  OT_REQUIRE(!job.images && !job.eval_images, job.model_dir,
             ": --images: a language model trains on a task or a corpus, not on images");
  FinetuneOutcome out;
  reset_peak_rss();  // this stage's peak_memory_mib, not the process's so far
  DecoderLM model = load_model(job.model_dir, job.load);
  const FinetunePlan plan = plan_finetune(*model, job);
  out.trainable_params = plan.trainable_params;
  out.total_params = plan.total_params;

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
    OT_REQUIRE(job.corpus.has_value(), "fine-tuning needs --task NAME with --train-file, --corpus FILE or --images");
    train_src = corpus_blocks(*job.corpus, *tok, tok_path, job.cache_dir);
    if (job.eval_corpus) val_src = corpus_blocks(*job.eval_corpus, *tok, tok_path, job.cache_dir);
    eval_name = corpus_name(job.eval_corpus ? *job.eval_corpus : *job.corpus);
  }

  TrainerOptions to = finetune_trainer_options(job, val_src != nullptr);
  Trainer trainer = finetune_trainer(*model, to);
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
  record_finetune(rec, job, out, *model, to,
                  training_flops_per_token(model, job.corpus ? job.corpus->block_size : job.block_size));
  if (rec && val_src && out.train.best_step >= 0 && job.record_validation)
    record_eval(rec, plan.bundle() ? "ft_emulator" : "ft_full", eval_name, "validation_loss", out.train.best_metric,
                val_src->size());
  record_rank_throughput(rec, out.train);
  write_finetune_output(*model, job, plan, out, rec, [&](const std::string& tmp) {
    save_model(model, tmp);
    copy_tokenizer_files(tok_path, tmp);
  });
  return out;
}

}  // namespace ot
