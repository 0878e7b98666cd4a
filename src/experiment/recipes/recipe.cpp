// experiment/recipes/recipe.cpp: see recipe.h.
#include "experiment/recipes/recipe.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include "checkpoint/hf_checkpoint.h"
#include "data/tasks.h"
#include "eval/image_classification.h"
#include "model/offsite_section.h"
#include "model/precision.h"
#include "dist/context.h"
#include "model/load.h"
#include "offsite/adapter.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::experiment {

namespace fs = std::filesystem;

void RunContext::stage(const std::string& out, const std::string& what,
                       const std::function<void(const std::string&)>& make) {
  // The output directory appears whole (written under a temporary name, then renamed by rank
  // 0), so its existence says the stage is done: a resumed run skips it.
  if (dir_exists(out)) {
    if (dist::is_writer()) std::cerr << what << ": done in an earlier attempt (" << out << ")\n";
    return;
  }
  torch::manual_seed(spec_.seed);  // each stage draws the same numbers whether or not earlier ones ran in this process
  const std::string partial = out + ".partial";
  if (dist::is_writer() && dir_exists(partial)) fs::remove_all(partial);
  dist::host_communicator().barrier();
  make(partial);
  // The stage's records (efficiency, per-rank throughput) reach the run file before the
  // stage counts as done: a later attempt skips the stage and keeps only what is on disk.
  if (rec_) rec_->flush();
  if (dist::is_writer()) fs::rename(partial, out);
  dist::host_communicator().barrier();
}

void RunContext::bundle_stage(const std::string& bundle) {
  stage(bundle, "distillation", [&](const std::string& out) { run_emulator_job(emulator_job(out), rec_); });
}

EvalSpec RunContext::eval_spec() {
  EvalSpec spec;
  const EvalSectionSpec& e = spec_.eval;
  std::vector<std::string> tasks = e.tasks;
  if (tasks.empty() && !spec_.finetune.task.empty() && spec_.recipe != "eval") tasks.push_back(spec_.finetune.task);
  for (const std::string& t : tasks) {
    const std::string name = canonical_task_name(t);
    TaskFiles f = task_files(name, spec_.finetune.task_root);
    OT_REQUIRE(!f.eval.empty(), "eval.tasks: no evaluation files known for ", name, spec_.where("eval.tasks"));
    for (const std::string& file : f.eval)
      OT_REQUIRE(file_exists(file) || dir_exists(file), "eval.tasks: ", name, ": '", file,
                 "' does not exist (set finetune.task_root or $OT_DATA)", spec_.where("finetune.task_root"));
    spec.tasks.emplace_back(name, load_task(name, f.eval).eval_docs);
  }
  for (const std::string& d : e.data)
    if (!workspace_.is_images(d)) spec.texts.emplace_back(d, read_text_file(workspace_.ensure_text(d)));
  spec.block_size = e.block_size;
  spec.batch_size = e.batch_size;
  spec.limit = e.limit;
  spec.precision = spec_.runtime.precision;
  return spec;
}

void RunContext::evaluate(const std::string& setting, const std::string& model, const std::string& adapter,
                          const EvalSpec& spec, const std::string& bundle) {
  if (is_vision_model_dir(model)) return evaluate_images(setting, model, adapter, bundle);
  if (spec.tasks.empty() && spec.texts.empty()) return;
  if (dist::is_writer()) std::cerr << "eval: " << setting << "\n";
  const std::string memo = workspace_.foundation_scores_path(model, adapter, spec);
  std::optional<std::vector<TaskResult>> results;
  if (!memo.empty()) results = Workspace::read_scores(memo);
  // A team evaluates together (the perplexity sums are reduced): all read the cache or none.
  if (!memo.empty() && dist::host_communicator().all_reduce_max(results ? 0.0 : 1.0) > 0) results.reset();
  if (results) {
    if (dist::is_writer()) std::cerr << "eval: " << setting << " scores of the cached foundation model: " << memo << "\n";
  } else {
    DecoderLM m = load_model(model, spec_.runtime.load);
    if (!adapter.empty())
      attach_adapter(*m, model, adapter, bundle,
                     "eval.adapter: plugging an adapter into the full model needs the bundle it was trained on "
                     "(eval.bundle)" + spec_.where("eval.adapter"));
    std::unique_ptr<Tokenizer> tok = load_tokenizer(workspace_.tokenizer_for(model));
    results = evaluate_model(m, *tok, spec, dist::host_communicator());
    if (!memo.empty() && dist::is_writer()) Workspace::write_scores(memo, *results);
  }
  for (const TaskResult& r : *results) rows_.emplace_back(setting, r);
  if (rec_) record_results(*rec_, setting, *results);
}

// A vision encoder scored on every image source of eval.data: top-1 (and top-5) accuracy.
void RunContext::evaluate_images(const std::string& setting, const std::string& model, const std::string& adapter,
                                 const std::string& bundle) {
  if (dist::is_writer()) std::cerr << "eval: " << setting << "\n";
  VisionEncoder m = load_vision_model(model, spec_.runtime.load);
  if (!adapter.empty())
    attach_adapter(*m, model, adapter, bundle,
                   "eval.adapter: plugging an adapter into the full model needs the bundle it was trained on "
                   "(eval.bundle)" + spec_.where("eval.adapter"));
  const ImageProcessorConfig processor = image_processor_for_model(model, m->config().image_size);
  for (const std::string& d : spec_.eval.data) {
    OT_REQUIRE(workspace_.is_images(d), "eval.data: '", d, "' is text, but ", model, " is a vision encoder",
               spec_.where("eval.data"));
    const std::shared_ptr<const ImageDataset> data = workspace_.images(d);
    AutocastGuard autocast(m->device(), spec_.runtime.precision);
    const std::vector<TaskResult> results = evaluate_image_classification(
        m, *data, processor, d, spec_.eval.batch_size, dist::host_communicator());
    for (const TaskResult& r : results) rows_.emplace_back(setting, r);
    if (rec_) record_results(*rec_, setting, results);
  }
}

EmulatorJob RunContext::emulator_job(const std::string& out) {
  const DistillSpec& d = spec_.distill;
  EmulatorJob job;
  job.model_dir = workspace_.ensure_foundation_model();
  job.out_dir = out;
  job.tokenizer = workspace_.ensure_tokenizer();
  job.emulator = spec_.emulator.options;
  job.hash_files = spec_.runtime.hash_files;
  job.report_batches = spec_.emulator.report_batches;
  const std::string& calibration = spec_.emulator.calibration_data;
  if (!calibration.empty() && workspace_.is_images(calibration))
    job.calibration_images = workspace_.image_data(calibration);
  else if (!calibration.empty())
    job.calibration = workspace_.corpus(calibration, d.block_size, 16);
  if (is_vision_model_dir(job.model_dir)) {
    job.tokenizer.clear();
    if (!d.data.empty()) job.distill_images = workspace_.image_data(d.data);
    if (!d.eval_data.empty()) job.eval_images = workspace_.image_data(d.eval_data);
    // The bundle carries a classifier for the data owner's classes, issued with the adapter.
    const FinetuneSpec& f = spec_.finetune;
    OT_REQUIRE(!f.data.empty(), "finetune.data: a vision encoder's fine-tuning images are needed to issue its "
               "classifier", spec_.where("finetune"));
    job.num_labels = workspace_.images(f.data)->num_classes();
  } else {
    if (!d.data.empty()) job.distill = workspace_.corpus(d.data, d.block_size);
    if (!d.eval_data.empty()) job.eval = workspace_.corpus(d.eval_data, d.block_size, d.eval_blocks);
  }
  job.distill_loss = d.loss;
  job.trainer = d.trainer;
  job.trainer.state_path = path_join(workspace_.run_dir(), "distill.state");
  job.load = spec_.runtime.load;
  job.cache_dir = workspace_.token_cache_dir();
  job.record_perplexities = false;
  return job;
}

FinetuneJob RunContext::finetune_job(const std::string& model, const std::string& out, const std::string& label,
                                     const TrainingSpec& section, const std::string& trainable) {
  const FinetuneSpec& f = spec_.finetune;
  FinetuneJob job;
  job.model_dir = model;
  job.out_dir = out;
  job.tokenizer = workspace_.ensure_tokenizer();
  job.trainable = trainable;
  job.freeze_bottom = f.freeze_bottom;
  job.train_head = f.train_head;
  job.peft = f.peft;
  job.block_size = section.block_size;
  if (!f.task.empty()) {
    job.task = canonical_task_name(f.task);
    TaskFiles files = task_files(job.task, f.task_root);
    job.train_file = f.train_file;
    if (job.train_file.empty()) {
      OT_REQUIRE(!files.train.empty(), "finetune.task = ", job.task, ": no training split is stored under ",
                 f.task_root, "; set finetune.train_file", spec_.where("finetune.task"));
      job.train_file = files.train.front();
    }
    OT_REQUIRE(file_exists(job.train_file), "finetune: training file '", job.train_file,
               "' does not exist (set finetune.task_root, $OT_DATA or finetune.train_file)", spec_.where("finetune"));
    job.validation_file = f.validation_file;
    if (job.validation_file.empty() && !files.validation.empty() && file_exists(files.validation.front()))
      job.validation_file = files.validation.front();
    if (f.prefix_token >= 0) job.prefix_token = f.prefix_token;
  } else if (is_vision_model_dir(model)) {
    job.tokenizer.clear();
    job.images = workspace_.image_data(f.data);
    if (!f.eval_data.empty()) job.eval_images = workspace_.image_data(f.eval_data);
    job.new_classifier = trainable == "all" && !is_offsite_bundle(load_hf_config(model));
    job.train_head = job.train_head || trainable != "all";  // the issued classifier is the data owner's to train
  } else {
    job.corpus = workspace_.corpus(f.data, job.block_size);
    if (!f.eval_data.empty()) job.eval_corpus = workspace_.corpus(f.eval_data, job.block_size, section.eval_blocks);
  }
  job.trainer = section.trainer;
  job.trainer.state_path = path_join(workspace_.run_dir(), label + ".state");
  job.load = spec_.runtime.load;
  job.cache_dir = workspace_.token_cache_dir();
  job.max_eval_examples = f.max_eval_examples;
  job.hash_files = spec_.runtime.hash_files;
  job.label = label;
  job.record_validation = false;
  return job;
}

}  // namespace ot::experiment
