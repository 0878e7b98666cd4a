// experiment/spec.cpp: see spec.h.
#include "experiment/spec.h"

#include <sstream>

#include "experiment/schema.h"
#include "util/device.h"
#include "util/error.h"

namespace ot::experiment {

namespace {

// The resolved TOML text of a section ("" when absent): a cache key ingredient.
std::string section_toml(const Config& c, const std::string& key) {
  const toml::node* n = get_dotted(c.table, key);
  if (!n) return "";
  std::ostringstream os;
  os << toml::toml_formatter(*n, toml::format_flags::none);
  return os.str();
}

nlohmann::json toml_to_json(const toml::table& t) {
  std::ostringstream os;
  os << toml::json_formatter(t);
  return nlohmann::json::parse(os.str());
}

DataSourceSpec data_source_of(const Config& c, const std::string& name) {
  const std::string key = "data." + name;
  DataSourceSpec d;
  d.name = name;
  d.path = c.str(key + ".path");
  d.brown_dir = c.str(key + ".brown");
  d.text_field = c.str(key + ".text_field");
  d.section_toml = section_toml(c, key);
  d.image_format = c.str(key + ".images");
  if (d.is_images()) {
    d.image_split = c.str(key + ".split");
    d.classes = c.integers(key + ".classes");
    d.max_examples = c.integer(key + ".max_examples");
    d.skip_examples = c.integer(key + ".skip_examples");
    d.augment = c.flag(key + ".augment");
    d.min_crop_scale = c.number(key + ".min_crop_scale");
    return d;
  }
  if (d.path.empty()) {
    auto letters = [&](const std::string& k) {
      std::string list;
      for (const std::string& g : c.strings(k)) list += (list.empty() ? "" : ",") + g;
      return list.empty() ? std::string() : parse_genre_letters(list, k + c.where(k));
    };
    d.selection.genres = letters(key + ".genres");
    d.selection.exclude_genres = letters(key + ".exclude_genres");
    d.selection.split = parse_brown_split(c.str(key + ".split"));
    d.selection.validation_fraction = c.number(key + ".validation_fraction");
    d.selection.test_fraction = c.number(key + ".test_fraction");
  }
  return d;
}

void read_training_section(const Config& c, const std::string& section, TrainingSpec& t) {
  t.block_size = c.integer(section + ".block_size");
  t.eval_blocks = c.integer(section + ".eval_blocks");
  t.trainer = trainer_options_of(c, section);
}

}  // namespace

const DataSourceSpec& ExperimentSpec::data_source(const std::string& name) const {
  for (const DataSourceSpec& d : data)
    if (d.name == name) return d;
  fail("data.", name, ": no such data source");
}

RuntimeSpec runtime_spec_of(const Config& c) {
  RuntimeSpec r;
  r.device = c.str("runtime.device");
  r.dtype = c.str("runtime.dtype");
  r.load.device = parse_device(r.device, "runtime.device");
  r.load.dtype = parse_dtype(r.dtype, "runtime.dtype");
  r.precision = parse_precision(c.str("runtime.precision"), "runtime.precision");
  try {
    check_precision(r.precision, r.load.device, r.load.dtype, "runtime.precision");
  } catch (const Error& e) {
    fail(e.what(), c.where("runtime.precision"));
  }
  r.threads = c.integer("runtime.threads");
  r.checkpoint_activations = c.flag("runtime.checkpoint_activations");
  r.hash_files = c.flag("runtime.hash_files");
  return r;
}

TrainerOptions trainer_options_of(const Config& c, const std::string& s) {
  TrainerOptions t = trainer_options_from(c, s);  // the stage's keys (train/trainer_options.h's table)
  t.seed = static_cast<uint64_t>(c.integer("experiment.seed"));
  t.precision = parse_precision(c.str("runtime.precision"), "runtime.precision");
  t.checkpoint_activations = c.flag("runtime.checkpoint_activations");
  return t;
}

ExperimentSpec spec_of(const Config& c, const RuntimeSpec& runtime) {
  ExperimentSpec s;
  s.config_ = &c;
  s.name = c.str("experiment.name");
  s.recipe = c.str("experiment.recipe");
  s.work_dir = c.str("experiment.work_dir");
  s.seed = static_cast<uint64_t>(c.integer("experiment.seed"));
  s.runtime = runtime;

  if (const toml::table* data = c.table_at("data"))
    for (const auto& [name, source] : *data) s.data.push_back(data_source_of(c, std::string(name.str())));

  s.tokenizer.path = c.str("tokenizer.path");
  s.tokenizer.train_data = c.str("tokenizer.train_data");
  s.tokenizer.vocab_size = c.integer("tokenizer.vocab_size");
  s.tokenizer.min_frequency = c.integer("tokenizer.min_frequency");
  s.tokenizer.section_toml = section_toml(c, "tokenizer");

  s.model.path = c.str("model.path");
  if (const toml::table* init = c.table_at("model.init")) s.model.init = toml_to_json(*init);

  read_training_section(c, "pretrain", s.pretrain);
  s.pretrain.data = c.str("pretrain.data");
  s.pretrain.eval_data = c.str("pretrain.eval_data");
  s.pretrain.trainer.seed = static_cast<uint64_t>(c.integer("pretrain.seed"));
  s.pretrain.section_toml = section_toml(c, "pretrain");

  const auto adapter = c.integers("emulator.adapter");
  EmulatorOptions& e = s.emulator.options;
  e.bottom = adapter.at(0);
  e.top = adapter.at(1);
  e.layers = c.integer("emulator.layers");
  e.strategy = c.str("emulator.strategy");
  e.repeat = c.flag("emulator.repeat");
  e.prune_ratio = c.number("emulator.prune");
  e.quantize_bits = static_cast<int>(c.integer("emulator.quantize_bits"));
  e.prune_channels = c.number("emulator.prune_channels");
  e.svd = c.number("emulator.svd");
  e.channel_score = c.str("emulator.channel_score");
  e.gradot_lambda = c.number("emulator.gradot_lambda");
  e.replace_layers = c.str("emulator.replace_layers");
  e.replace_group = c.integer("emulator.replace_group");
  e.harmonizer_rank = c.integer("emulator.harmonizer_rank");
  e.train_head = c.flag("finetune.train_head");
  s.emulator.calibration_data = c.str("emulator.calibration_data");
  s.emulator.bundle = c.str("emulator.bundle");
  s.emulator.save_to = c.str("emulator.save_to");
  s.emulator.report_batches = c.integer("emulator.report_batches");

  read_training_section(c, "distill", s.distill);
  s.distill.data = c.str("distill.data");
  s.distill.eval_data = c.str("distill.eval_data");
  s.distill.loss.kd_weight = c.number("distill.kd_weight");
  s.distill.loss.lm_weight = c.number("distill.lm_weight");
  s.distill.loss.layerwise = c.flag("distill.layerwise_kd");

  FinetuneSpec& f = s.finetune;
  read_training_section(c, "finetune", f);
  f.task = c.str("finetune.task");
  f.task_root = c.str("finetune.task_root");
  f.train_file = c.str("finetune.train_file");
  f.validation_file = c.str("finetune.validation_file");
  f.data = c.str("finetune.data");
  f.eval_data = c.str("finetune.eval_data");
  f.trainable = c.str("finetune.trainable");
  f.freeze_bottom = c.flag("finetune.freeze_bottom");
  f.train_head = c.flag("finetune.train_head");
  f.peft.method = c.str("finetune.peft");
  f.peft.lora_rank = c.integer("finetune.lora_rank");
  f.peft.lora_alpha = c.number("finetune.lora_alpha");
  f.peft.lora_dropout = c.number("finetune.lora_dropout");
  f.peft.adapter_size = c.integer("finetune.adapter_size");
  f.prefix_token = c.integer("finetune.prefix_token");
  f.max_eval_examples = c.integer("finetune.max_eval_examples");

  read_training_section(c, "full_finetune", s.full_finetune);
  s.full_finetune.enabled = c.flag("full_finetune.enabled");

  EvalSectionSpec& v = s.eval;
  v.settings = c.strings("eval.settings");
  v.tasks = c.strings("eval.tasks");
  v.data = c.strings("eval.data");
  v.block_size = c.integer("eval.block_size");
  v.batch_size = c.integer("eval.batch_size");
  v.limit = c.integer("eval.limit");
  v.model = c.str("eval.model");
  v.adapter = c.str("eval.adapter");
  v.bundle = c.str("eval.bundle");
  v.setting = c.str("eval.setting");
  v.section_toml = section_toml(c, "eval");

  s.efficiency.method = c.str("efficiency.method");
  s.efficiency.shape = c.str("efficiency.shape");
  s.efficiency.seq_len = c.integer("efficiency.seq_len");
  s.efficiency.batch = c.integer("efficiency.batch");
  s.efficiency.steps = c.integer("efficiency.steps");
  s.efficiency.warmup_steps = c.integer("efficiency.warmup_steps");
  return s;
}

}  // namespace ot::experiment
