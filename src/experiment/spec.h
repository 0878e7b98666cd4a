// experiment/spec.h: an experiment's validated configuration (experiment/config.h) as typed
// sections, read once, so that the workspace and the recipes use fields instead of TOML keys.
// `section_toml` fields keep a section's resolved TOML text: it is part of the cache keys of
// what that section makes (experiment/workspace.h), so it must stay byte for byte what the
// configuration holds.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "data/brown.h"
#include "experiment/config.h"
#include "model/load.h"
#include "model/peft.h"
#include "model/precision.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "train/trainer.h"

namespace ot::experiment {

// [runtime]: where it runs.
struct RuntimeSpec {
  LoadOptions load;                       // device and weight dtype
  Precision precision = Precision::kFp32;
  std::string device, dtype;              // as written (cache keys, the efficiency child)
  int64_t threads = 0;
  bool checkpoint_activations = false;
  bool hash_files = false;
};

// [data.<name>]: a text file, a Brown Corpus selection materialised by the workspace, or an
// image dataset.
struct DataSourceSpec {
  std::string name;
  std::string path;        // a text or JSONL file, or the image dataset's folder; "" = the Brown selection below
  std::string image_format;           // "" for text; imagefolder | cifar10 | cifar100 | idx
  std::string image_split = "train";  // train | test
  std::vector<int64_t> classes;       // images: the class ids kept, in their new order (empty: all)
  int64_t max_examples = 0, skip_examples = 0;
  bool augment = true;                // images: augmented when trained on
  double min_crop_scale = 0.08;
  bool is_images() const { return !image_format.empty(); }
  std::string brown_dir;
  BrownSelection selection;
  std::string text_field = "text";
  std::string section_toml;
};

struct TokenizerSpec {
  std::string path;        // an existing tokenizer ("" = the model's own) ...
  std::string train_data;  // ... or a byte-level BPE trained on this data source
  int64_t vocab_size = 0, min_frequency = 0;
  std::string section_toml;
};

struct ModelSpec {
  std::string path;                   // an HF checkpoint ...
  std::optional<nlohmann::json> init; // ... or [model.init], pretrained and cached
};

// What every training section ([pretrain], [distill], [finetune], [full_finetune]) holds.
struct TrainingSpec {
  int64_t block_size = 512, eval_blocks = 0;
  TrainerOptions trainer;
};

struct PretrainSpec : TrainingSpec {
  std::string data, eval_data;
  std::string section_toml;
};

struct EmulatorSpec {
  EmulatorOptions options;        // train_head from finetune.train_head: the owner issues what the data owner trains
  std::string calibration_data;   // strategy cka
  std::string bundle;             // an existing bundle to use instead of making one
  std::string save_to;            // recipe distill: where the bundle goes
  int64_t report_batches = 0;     // gradient alignment batches (0: off)
};

struct DistillSpec : TrainingSpec {
  std::string data, eval_data;
  DistillOptions loss;
};

struct FinetuneSpec : TrainingSpec {
  std::string task, task_root, train_file, validation_file;  // a downstream task ...
  std::string data, eval_data;                                // ... or a data source
  std::string trainable;
  bool freeze_bottom = false, train_head = false;
  PeftOptions peft;
  int64_t prefix_token = -1;
  int64_t max_eval_examples = 0;
};

struct FullFinetuneSpec : TrainingSpec {
  bool enabled = true;
};

struct EvalSectionSpec {
  std::vector<std::string> settings, tasks, data;
  int64_t block_size = 512, batch_size = 8, limit = 0;
  std::string model, adapter, bundle, setting;  // recipe eval
  std::string section_toml;
};

struct EfficiencySpec {
  std::string method, shape;
  int64_t seq_len = 512, batch = 1, steps = 5, warmup_steps = 2;
};

struct ExperimentSpec {
  std::string name, recipe, work_dir;
  uint64_t seed = 0;
  RuntimeSpec runtime;
  std::vector<DataSourceSpec> data;  // in the order of the configuration's [data] table
  TokenizerSpec tokenizer;
  ModelSpec model;
  PretrainSpec pretrain;
  EmulatorSpec emulator;
  DistillSpec distill;
  FinetuneSpec finetune;
  FullFinetuneSpec full_finetune;
  EvalSectionSpec eval;
  EfficiencySpec efficiency;

  // The data source `name`; throws ot::Error when the configuration has none.
  const DataSourceSpec& data_source(const std::string& name) const;
  // "at file:line:col" of `key`, for messages.
  std::string where(const std::string& key) const { return config_->where(key); }

 private:
  friend ExperimentSpec spec_of(const Config& c, const RuntimeSpec& runtime);
  const Config* config_ = nullptr;
};

// [runtime]; throws ot::Error naming the key for a device, dtype or precision that cannot be used.
RuntimeSpec runtime_spec_of(const Config& c);

// The whole configuration, typed (`c` must outlive the result: messages locate keys in it).
// Throws ot::Error naming the key for a value that does not parse (a Brown genre letter).
ExperimentSpec spec_of(const Config& c, const RuntimeSpec& runtime);

// The trainer options of a training section ("pretrain", "distill", "finetune",
// "full_finetune"), with the run's seed and [runtime] precision and checkpointing.
TrainerOptions trainer_options_of(const Config& c, const std::string& section);

}  // namespace ot::experiment
