// experiment/vision_jobs.cpp: the emulator and fine-tuning jobs of experiment/jobs.h for a
// vision encoder. The same offsite steps as a decoder's (split, layer selection, repetition,
// pruning, quantisation, the bundle's checks, the adapter's checks), with images for data:
//   emulator   distillation by feature KD on the model owner's images (lm_weight 0), the
//              distilled emulator kept by its mean KD loss on held-out images; with
//              num_labels, a fresh classifier issued with the adapter (the head trains)
//   finetune   classification: cross entropy, augmentation (random resized crop + flip), the
//              classifier at head_lr_scale x lr; validation loss and accuracy on held-out
//              images; a full model takes a new classifier for the images' classes on request
// The text-only options (corpora, tasks, CKA calibration) are refused by name.
#include <torch/torch.h>

#include <iostream>

#include "data/image_source.h"
#include "eval/image_classification.h"
#include "experiment/job_steps.h"
#include "experiment/jobs.h"
#include "model/flops.h"
#include "model/load.h"
#include "model/peft.h"
#include "offsite/adapter.h"
#include "offsite/channel_pruning.h"
#include "offsite/cka.h"
#include "offsite/layer_replacement.h"
#include "offsite/distill.h"
#include "offsite/rank_compression.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/memory.h"
#include "util/signals.h"

namespace ot {

namespace {

// The first `max` of `examples` (all for max <= 0).
std::vector<int64_t> capped(std::vector<int64_t> examples, int64_t max) {
  if (max > 0 && static_cast<int64_t>(examples.size()) > max) examples.resize(static_cast<size_t>(max));
  return examples;
}

std::vector<int64_t> all_examples(const ImageDataset& d) {
  std::vector<int64_t> v(static_cast<size_t>(d.size()));
  for (int64_t i = 0; i < d.size(); ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

int64_t tokens_per_image(VisionEncoder& m) { return m->config().num_patches() + 1; }

ImageSourceOptions training_source_options(const ImageDataSpec& s, uint64_t seed, int64_t tokens) {
  OT_REQUIRE(s.min_crop_scale > 0.0 && s.min_crop_scale <= 1.0, s.where.empty() ? s.path : s.where,
             ": min_crop_scale must lie in (0, 1], got ", s.min_crop_scale);
  ImageSourceOptions so;
  so.augment = s.augment;
  so.augmentation.scale = {s.min_crop_scale, 1.0};
  so.seed = seed;
  so.tokens_per_image = tokens;
  return so;
}

// HF's init scale for new weights (config initializer_range, transformers' default 0.02).
double init_std(VisionEncoder& m) {
  const nlohmann::json& raw = m->config().raw;
  return raw.is_object() && raw.contains("initializer_range") && raw["initializer_range"].is_number()
             ? raw["initializer_range"].get<double>()
             : 0.02;
}

// The checkpoint directory's image processor settings travel with what is written from it,
// as a tokenizer does with a language model.
void save_with_processor(VisionEncoder& model, const std::string& from_dir, const std::string& tmp,
                         const nlohmann::json& extra = nlohmann::json::object()) {
  save_model(model, tmp, extra);
  const std::string processor = path_join(from_dir, "preprocessor_config.json");
  if (file_exists(processor))
    write_text_file_atomically(path_join(tmp, "preprocessor_config.json"), read_text_file(processor));
}

void refuse_text_options(const EmulatorJob& job) {
  auto refuse = [&](bool asked, const char* option, const char* instead) {
    OT_REQUIRE(!asked, job.model_dir, ": ", option, " reads a text corpus, which a vision encoder cannot take",
               instead);
  };
  refuse(job.distill.has_value(), "--distill", " (distil on images: --distill-images FORMAT=PATH)");
  refuse(job.eval.has_value(), "--eval-corpus", " (held-out images: --eval-images FORMAT=PATH)");
  refuse(job.calibration.has_value(), "--calibration", " (CKA on images: --calibration-images FORMAT=PATH)");
  OT_REQUIRE(job.report_batches == 0, job.model_dir, ": --report: the gradient alignment is measured on the "
             "language-modelling loss of a decoder; a vision bundle's classifier is new, so there is no loss the "
             "full model shares with it");
}

void refuse_text_options(const FinetuneJob& job) {
  auto refuse = [&](bool asked, const char* option) {
    OT_REQUIRE(!asked, job.model_dir, ": ", option,
               " is for a language model; a vision encoder fine-tunes on images (--images FORMAT=PATH)");
  };
  refuse(!job.task.empty() || !job.train_file.empty() || !job.validation_file.empty(), "--task / --train-file");
  refuse(job.corpus.has_value() || job.eval_corpus.has_value(), "--corpus / --eval-corpus");
  refuse(job.prefix_token.has_value(), "--prefix-token");
}

// The mean KD loss of the bundle's emulator over `source`, its examples split over the team.
double mean_kd(Distiller& d, const BatchSource& source, int64_t batch_size) {
  dist::Communicator& comm = dist::host_communicator();
  const auto [begin, end] = dist::shard_range(source.size(), comm.rank(), comm.size());
  double sum = 0.0, examples = 0.0;
  for (int64_t b = begin; b < end; b += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = b; i < std::min(end, b + batch_size); ++i) idx.push_back(i);
    sum += d.kd_sum(source.batch(idx));
    examples += static_cast<double>(idx.size());
  }
  const std::vector<double> total = comm.all_reduce_sum(std::vector<double>{sum, examples});
  return total[0] / std::max(total[1], 1.0);
}

}  // namespace

std::shared_ptr<const ImageDataset> load_image_data(const ImageDataSpec& s) {
  const ImageDataset all = load_image_dataset(s.format, s.path, s.split);
  if (s.classes.empty() && s.max_examples == 0 && s.skip_examples == 0) return std::make_shared<const ImageDataset>(all);
  return std::make_shared<const ImageDataset>(
      select_examples(all, s.classes, s.skip_examples, s.max_examples, s.where.empty() ? s.path : s.where));
}

EmulatorOutcome run_vision_emulator_job(const EmulatorJob& job, results::RunRecorder* rec) {
  refuse_text_options(job);
  OT_REQUIRE(job.distill_images || !job.eval_images, "--eval-images: picks the best distilled emulator; "
             "give --distill-images too");
  OT_REQUIRE(job.num_labels >= 0, "--num-labels: expected a class count >= 1 (or 0: no classifier), got ",
             job.num_labels);
  EmulatorOutcome out;
  reset_peak_rss();  // this stage's peak_memory_mib, not the process's so far
  // The inputs first: a bad path fails before the model is read.
  std::shared_ptr<const ImageDataset> distill_data, eval_data, calibration_data;
  if (job.distill_images) distill_data = load_image_data(*job.distill_images);
  if (job.eval_images) eval_data = load_image_data(*job.eval_images);
  if (job.calibration_images) calibration_data = load_image_data(*job.calibration_images);
  OT_REQUIRE(job.emulator.strategy != "cka" || calibration_data, "--strategy cka: needs calibration images "
             "(--calibration-images FORMAT=PATH)");
  OT_REQUIRE(job.emulator.replace_layers.empty() || distill_data, "--replace-layers: harmonizers start as the "
             "identity and are trained by distillation; give --distill-images FORMAT=PATH");

  VisionEncoder full = load_vision_model(job.model_dir, job.load);
  const int64_t n = full->num_blocks();
  EmulatorOptions emu = checked_split(job.emulator, n);
  if (job.num_labels > 0) emu.train_head = true;  // a new classifier is the data owner's to train
  // Calibration (CKA selection, block importance): the first 64 images, in batches of 16.
  std::vector<Batch> calibration;
  if (calibration_data) {
    const ImageProcessorConfig processor = image_processor_for_model(job.model_dir, full->config().image_size);
    ImageClassificationSource src(calibration_data, {}, processor, ImageSourceOptions{});
    const int64_t images = std::min<int64_t>(src.size(), 64);
    for (int64_t i = 0; i < images; i += 16) {
      std::vector<int64_t> idx;
      for (int64_t j = i; j < std::min(images, i + 16); ++j) idx.push_back(j);
      calibration.push_back(src.batch(idx));
    }
  }
  std::vector<int64_t> kept;
  if (emu.strategy == "cka") {
    const CkaSelection cka = cka_select_middle_blocks(*full, emu.bottom, emu.top, emu.layers, calibration);
    record_cka(rec, cka);
    kept = cka.kept;
  } else {
    kept = select_middle_blocks(n - emu.bottom - emu.top, emu.layers, emu.strategy);
  }
  out.layout = make_layout(n, emu, kept);
  VisionEncoder bundle = build_bundle(full, out.layout, emu);
  if (const LayerReplacement r = replace_emulator_layers(*full, *bundle, out.layout, emu, calibration, job.trainer.seed);
      !r.ranks.is_null()) {
    nlohmann::json section = bundle->config().raw.at("offsite");
    section["harmonizer_ranks"] = r.ranks;
    section["emulator"]["layer_replacement"] = r.record;
    bundle->set_config_entry("offsite", section);
  }
  if (emu.prune_channels > 0.0) {  // by magnitude: an encoder has no language-modelling loss for gradot
    nlohmann::json section = bundle->config().raw.at("offsite");
    section["mlp_channels"] = prune_emulator_channels(*bundle, out.layout, emu, {});
    bundle->set_config_entry("offsite", section);
  }
  if (emu.svd > 0.0) {
    nlohmann::json section = bundle->config().raw.at("offsite");
    section["svd_ranks"] = compress_emulator_ranks(*bundle, out.layout, emu.svd);
    bundle->set_config_entry("offsite", section);
  }
  if (job.num_labels > 0) {
    std::vector<std::string> names;
    for (int64_t i = 0; i < job.num_labels; ++i) names.push_back(std::to_string(i));
    torch::manual_seed(job.trainer.seed);  // the issued classifier is reproducible
    bundle->set_classifier(names, init_std(bundle));
  }
  record_layout(rec, out.layout, emu);

  if (distill_data) {
    const ImageProcessorConfig processor = image_processor_for_model(job.model_dir, full->config().image_size);
    ImageSourceOptions so = training_source_options(*job.distill_images, job.trainer.seed, tokens_per_image(full));
    ImageClassificationSource train_src(distill_data, all_examples(*distill_data),
                                        processor, so);
    std::unique_ptr<ImageClassificationSource> eval_src;
    if (eval_data)
      eval_src = std::make_unique<ImageClassificationSource>(
          eval_data, all_examples(*eval_data), processor,
          ImageSourceOptions{false, {}, 0, tokens_per_image(full)});
    bundle->set_activation_checkpointing(job.trainer.checkpoint_activations);
    Distiller d(bundle.ptr(), full.ptr(), out.layout, job.distill_loss);
    TrainerOptions to = job.trainer;
    to.label = "distill";
    to.best_metric = "kd";
    to.lower_is_better = true;
    to.keep_best = eval_src != nullptr;  // the paper's selection: the lowest held-out KD loss
    Trainer trainer(d.trainable(), to);
    wire_data_parallel(trainer, full->device());
    trainer.set_mode_callback([&](bool t) { bundle->train(t); });
    Trainer::EvalFn eval;
    if (eval_src) {
      bundle->eval();
      out.zs_emulator_kd = mean_kd(d, *eval_src, job.trainer.batch_size);
      eval = [&] { return Metrics{{"kd", mean_kd(d, *eval_src, job.trainer.batch_size)}}; };
    }
    out.train = trainer.fit(train_src, [&](const Batch& b, Metrics& extra) { return d.loss(b, extra); }, eval,
                            recorder_log(rec));
    if (out.train.interrupted) throw Preempted("distillation", to.state_path);
    bundle->eval();
    const std::string name = "images:" + job.distill_images->format;
    if (eval_src) out.distilled_emulator_kd = mean_kd(d, *eval_src, job.trainer.batch_size);
    if (eval_src && job.record_perplexities) {
      record_eval(rec, "zs_emulator", "images:" + job.eval_images->format, "kd", *out.zs_emulator_kd, eval_src->size());
      record_eval(rec, "distilled_emulator", "images:" + job.eval_images->format, "kd", *out.distilled_emulator_kd,
                  eval_src->size());
    }
    nlohmann::json section = bundle->config().raw.at("offsite");
    section["distill"] = {{"images", job.distill_images->format + "=" + job.distill_images->path},
                          {"steps", out.train.steps}, {"lm_weight", job.distill_loss.lm_weight},
                          {"kd_weight", job.distill_loss.kd_weight},
                          {"layerwise_kd", job.distill_loss.layerwise}, {"best_step", out.train.best_step}};
    bundle->set_config_entry("offsite", section);
    if (rec) {
      rec->set_efficiency("distill_tokens_per_s", out.train.tokens_per_second, "tokens/s");
      rec->set_efficiency("distill_exposed_comm_s", out.train.exposed_comm_seconds, "s");
      rec->set_efficiency("distill_train_s", out.train.train_seconds, "s");
      rec->set_efficiency("distill_peak_memory_mib", peak_rss_mib(), "MiB");
      record_device_efficiency(*rec, "distill_", out.train, training_flops_per_token(*bundle, tokens_per_image(full)),
                               bundle->device(), job.trainer.precision);
    }
    record_rank_throughput(rec, out.train);
  }
  write_on_rank0([&] {
    write_dir_atomically(job.out_dir, [&](const std::string& tmp) { save_with_processor(bundle, job.model_dir, tmp); });
  });
  if (rec && job.hash_files) rec->set_attribute("bundle_sha256", directory_sha256(job.out_dir));
  return out;
}

void reissue_vision_bundle(const std::string& bundle_dir, int64_t num_labels, uint64_t seed,
                           const std::string& out_dir, const LoadOptions& load) {
  OT_REQUIRE(num_labels >= 1, "re-issuing ", bundle_dir, ": expected a class count >= 1, got ", num_labels);
  VisionEncoder bundle = load_vision_model(bundle_dir, load);
  const IssuedAdapter issued = read_issued_adapter(bundle_dir, *bundle);  // the bundle checked first
  OT_REQUIRE(issued.layout.head, bundle_dir, ": the bundle does not issue its head, so it has no classifier the data "
             "owner may train (make it with `ot emulator --num-labels`)");
  if (!bundle->has_classifier() || bundle->config().num_labels != num_labels) {
    std::vector<std::string> names;
    for (int64_t i = 0; i < num_labels; ++i) names.push_back(std::to_string(i));
    torch::manual_seed(seed);
    bundle->set_classifier(names, init_std(bundle));
  }
  write_on_rank0([&] {
    write_dir_atomically(out_dir, [&](const std::string& tmp) { save_with_processor(bundle, bundle_dir, tmp); });
  });
}

FinetuneOutcome run_vision_finetune_job(const FinetuneJob& job, results::RunRecorder* rec) {
  refuse_text_options(job);
  OT_REQUIRE(job.images.has_value(), job.model_dir,
             ": a vision encoder fine-tunes on images: give --images FORMAT=PATH (imagefolder, cifar10, cifar100, idx)");
  FinetuneOutcome out;
  reset_peak_rss();
  const std::shared_ptr<const ImageDataset> train_data = load_image_data(*job.images);
  std::shared_ptr<const ImageDataset> eval_data;
  if (job.eval_images) eval_data = load_image_data(*job.eval_images);
  if (eval_data)
    OT_REQUIRE(eval_data->num_classes() == train_data->num_classes(), job.eval_images->path, ": ",
               eval_data->num_classes(), " classes, but the training images (", job.images->path, ") have ",
               train_data->num_classes());

  VisionEncoder model = load_vision_model(job.model_dir, job.load);
  const bool bundle = is_offsite_bundle(model->config());
  if (job.new_classifier) {
    OT_REQUIRE(!bundle, job.model_dir, ": --new-classifier: a bundle's classifier is issued by the model owner "
               "(`ot emulator --num-labels ", train_data->num_classes(), "`)");
    torch::manual_seed(job.trainer.seed);
    model->set_classifier(train_data->class_names, init_std(model));
  }
  OT_REQUIRE(model->has_classifier(), job.model_dir, ": the model has no classifier to train; ",
             bundle ? "ask the model owner for a bundle issued with `ot emulator --num-labels "
                    : "give --new-classifier for one over the images' ",
             bundle ? std::to_string(train_data->num_classes()) + "`" : "classes");
  OT_REQUIRE(model->config().num_labels == train_data->num_classes(), job.model_dir, ": the classifier has ",
             model->config().num_labels, " classes, but ", job.images->path, " has ", train_data->num_classes(),
             bundle ? " (the bundle was issued for another label set)" : " (give --new-classifier to replace it)");
  const FinetunePlan plan = plan_finetune(*model, job);
  out.trainable_params = plan.trainable_params;
  out.total_params = plan.total_params;

  const ImageProcessorConfig processor = image_processor_for_model(job.model_dir, model->config().image_size);
  std::vector<int64_t> train_idx, val_idx;
  if (eval_data) {
    train_idx = all_examples(*train_data);
    val_idx = all_examples(*eval_data);
  } else {
    ImageSplit s = split_image_validation(train_data->size(), job.validation_percent, job.trainer.seed);
    train_idx = std::move(s.train);
    val_idx = std::move(s.validation);
  }
  ImageSourceOptions so = training_source_options(*job.images, job.trainer.seed, tokens_per_image(model));
  ImageClassificationSource train_src(train_data, train_idx, processor, so);
  std::unique_ptr<ImageClassificationSource> val_src;
  val_idx = capped(val_idx, job.max_eval_examples);
  if (!val_idx.empty())
    val_src = std::make_unique<ImageClassificationSource>(eval_data ? eval_data : train_data, val_idx, processor,
                                                          ImageSourceOptions{false, {}, 0, so.tokens_per_image});

  TrainerOptions to = finetune_trainer_options(job, val_src != nullptr);
  Trainer trainer = finetune_trainer(*model, to);
  Trainer::EvalFn eval;
  if (val_src)
    eval = [&] {
      const ClassificationScore s =
          classification_score(model, *val_src, job.trainer.batch_size, dist::host_communicator());
      return Metrics{{"loss", s.loss}, {"accuracy", s.accuracy}};
    };
  auto loss = [&](const Batch& b, Metrics&) {
    return classification_loss(model->forward(b.pixel_values).logits, b.labels);
  };
  out.train = trainer.fit(train_src, loss, eval, recorder_log(rec));
  if (out.train.interrupted) throw Preempted("fine-tuning", to.state_path);
  model->eval();
  record_finetune(rec, job, out, *model, to, training_flops_per_token(*model, so.tokens_per_image));
  if (rec && val_src && out.train.best_step >= 0 && job.record_validation)
    record_eval(rec, bundle ? "ft_emulator" : "ft_full", "images:" + job.images->format, "validation_loss",
                out.train.best_metric, val_src->size());
  record_rank_throughput(rec, out.train);
  write_finetune_output(*model, job, plan, out, rec,
                        [&](const std::string& tmp) { save_with_processor(model, job.model_dir, tmp); });
  return out;
}

}  // namespace ot
