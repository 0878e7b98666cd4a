// experiment/jobs.h: the steps of offsite-tuning as self-contained jobs, each what one CLI
// command does and what the experiment recipes chain:
//   EmulatorJob  (model owner)  full model -> bundle: select, compress, optionally distill
//   FinetuneJob  (data owner)   bundle or full model -> adapter (or fine-tuned full model)
// Every job can record to an HDF5 run file (results/run_file.h): curves as they happen,
// evaluations, efficiency and provenance. Evaluation itself is eval/evaluate.h.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "data/image_datasets.h"
#include "data/task.h"
#include "eval/evaluate.h"
#include "model/load.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "offsite/gradient_alignment.h"
#include "model/peft.h"
#include "results/run_file.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace ot {

// Where a job's text comes from and how it is cut.
struct CorpusSpec {
  std::string path;            // plain text or JSONL
  std::string text_field = "text";
  int64_t block_size = 512;
  int64_t max_blocks = 0;      // > 0: use only the first N blocks (evaluation budgets)
};

// Where a job's images come from (data/image_datasets.h): a dataset on disk and its split.
struct ImageDataSpec {
  std::string format;          // imagefolder | cifar10 | cifar100 | idx
  std::string path;
  std::string split = "train";
  int64_t max_examples = 0;    // > 0: only the first N examples (budgets)...
  int64_t skip_examples = 0;   // ...after leaving out this many (a held-out part of a split)
  std::vector<int64_t> classes;  // only these classes, relabelled 0, 1, ... (empty: all)
  bool augment = true;           // when trained on: random resized crop + flip
  double min_crop_scale = 0.08;  // the crop's smallest share of the image (torchvision's default)
  std::string where;           // the configuration key it came from, for messages
};

// The dataset `s` names, its classes and examples selected (data/image_datasets.h).
std::shared_ptr<const ImageDataset> load_image_data(const ImageDataSpec& s);

struct EmulatorJob {
  std::string model_dir, out_dir, tokenizer;
  EmulatorOptions emulator;
  std::optional<CorpusSpec> calibration;  // --strategy cka
  std::optional<CorpusSpec> distill;      // distillation data
  std::optional<CorpusSpec> eval;         // emulator perplexity during distillation
  // Vision encoders: distillation images, and held-out images whose mean KD loss picks the
  // distilled emulator kept (the paper's selection by KD loss).
  std::optional<ImageDataSpec> distill_images, eval_images;
  std::optional<ImageDataSpec> calibration_images;  // vision, --strategy cka (the first 64 images)
  // Vision encoders: > 0 issues the bundle with a fresh classifier of this many classes,
  // trainable with the adapter (the head is issued; see EmulatorOptions::train_head).
  int64_t num_labels = 0;
  DistillOptions distill_loss;
  TrainerOptions trainer;
  LoadOptions load;
  std::string cache_dir;                  // token caches
  bool record_perplexities = true;        // record the held-out scores (perplexities, vision: KD) as eval rows
  bool hash_files = false;                // record the bundle's SHA-256 (bundle_sha256)
  // > 0: measure the gradient alignment (offsite/gradient_alignment.h) on this many batches
  // of the eval corpus (else the distillation corpus), before and after distillation.
  int64_t report_batches = 0;
};

struct EmulatorOutcome {
  OffsiteLayout layout;
  std::optional<double> zs_emulator_ppl, distilled_emulator_ppl, full_ppl;
  std::optional<double> zs_emulator_kd, distilled_emulator_kd;  // vision: mean KD on the held-out images
  std::optional<GradientAlignment> zs_alignment, distilled_alignment;  // with report_batches
  TrainResult train;
};

// Throws Preempted (util/signals.h) when a stop signal ends distillation, its state saved.
EmulatorOutcome run_emulator_job(const EmulatorJob& job, results::RunRecorder* rec);

struct FinetuneJob {
  std::string model_dir, out_dir, tokenizer;
  std::string trainable = "adapter";  // adapter | all | emulator
  bool freeze_bottom = false;
  bool train_head = false;
  PeftOptions peft;
  // Data: a downstream task (train file, optional validation file; else the first 5%)...
  std::string task, train_file, validation_file;
  // ...or a corpus (language modelling)...
  std::optional<CorpusSpec> corpus, eval_corpus;
  // ...or images (a vision encoder's classification): validation on eval_images, else on a
  // seeded `validation_percent` of the training images.
  std::optional<ImageDataSpec> images, eval_images;
  int validation_percent = 5;
  bool new_classifier = false;          // full model: a fresh classifier for the images' classes
  int64_t block_size = 512;
  std::optional<int64_t> prefix_token;  // OPT: "</s>" before every example
  TrainerOptions trainer;
  LoadOptions load;
  std::string cache_dir;
  int64_t max_eval_examples = 0;        // cap on validation examples (0: all)
  bool skip_malformed = false;          // count and skip malformed task records instead of failing
  std::string label = "finetune";       // curve name; efficiency entries are prefixed "<label>_" unless "finetune"
  bool record_validation = true;        // record the best validation loss as an eval row
  bool hash_files = false;              // record bundle_sha256 and adapter_sha256 (SHA-256)
};

struct FinetuneOutcome {
  TrainResult train;
  int64_t trainable_params = 0, total_params = 0;
  bool wrote_adapter = false;  // else a full model checkpoint
  bool wrote_peft = false;     // the adapter directory also holds PEFT's LoRA layout (peft/)
};

// Throws Preempted (util/signals.h) when a stop signal ends fine-tuning, its state saved.
FinetuneOutcome run_finetune_job(const FinetuneJob& job, results::RunRecorder* rec);

// The vision halves of the two (experiment/vision_jobs.cpp), which the two above hand a
// vision encoder to.
EmulatorOutcome run_vision_emulator_job(const EmulatorJob& job, results::RunRecorder* rec);
// The model owner re-issues a vision bundle for another label set: the same blocks and block
// map, a new classifier of `num_labels` classes (drawn with `seed`), written to `out_dir`. The
// bundle must issue its head (a classifier trainable with the adapter); one whose classifier
// already has `num_labels` classes is copied as it is.
void reissue_vision_bundle(const std::string& bundle_dir, int64_t num_labels, uint64_t seed,
                           const std::string& out_dir, const LoadOptions& load);
FinetuneOutcome run_vision_finetune_job(const FinetuneJob& job, results::RunRecorder* rec);

// Token blocks of a corpus for `tok`, cached under cache_dir.
std::shared_ptr<BatchSource> corpus_blocks(const CorpusSpec& spec, const Tokenizer& tok,
                                           const std::string& tokenizer_path, const std::string& cache_dir);

// Adds `results` as eval rows of `setting` (the harness stderr where there is one, else 0).
void record_results(results::RunRecorder& rec, const std::string& setting, const std::vector<TaskResult>& results);

// A RunRecorder for `path` with provenance filled from this build, or null for "" and on
// every rank but the team's rank 0.
std::unique_ptr<results::RunRecorder> open_recorder(const std::string& path, const std::string& experiment,
                                                    const std::string& command_line, const std::string& config_text);

}  // namespace ot
