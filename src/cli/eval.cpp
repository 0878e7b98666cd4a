// cli/eval.cpp: `ot eval --model DIR [--tokenizer P] (--task NAME=FILE)... [--corpus FILE
// --block-size N] [--limit N] [--batch-size B] [--max-length N] [--setting S]
// [--output results.json]`: zero-shot lm-eval-harness v0.3.0 metrics for each task (the
// task name `wikitext` scores a raw WikiText file with the harness's rolling perplexity),
// plus the paper's block perplexity of a corpus. Prints the harness's results table and
// optionally writes its results JSON.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "data/image_datasets.h"
#include "data/image_processor.h"
#include "data/tasks.h"
#include "dist/context.h"
#include "eval/evaluate.h"
#include "eval/image_classification.h"
#include "eval/perplexity.h"
#include "eval/settings.h"
#include "experiment/jobs.h"  // open_recorder, record_results
#include "model/load.h"
#include "offsite/adapter.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {

namespace {

std::pair<std::string, std::string> split_task_arg(const std::string& arg) {
  const size_t eq = arg.find('=');
  OT_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < arg.size(), "--task '", arg,
             "': expected NAME=FILE, e.g. piqa=valid_with_labels.jsonl");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// The options of `ot eval`.
struct EvalArgs {
  std::string model, tokenizer, corpus, output, setting, adapter, bundle, record, images, split = "test";
  std::vector<std::string> tasks;
  int64_t block_size = 512, limit = 0, batch_size = 1, max_length = 0;
  bool no_row_bos = false;
  RuntimeOptions rt;
};

// A vision encoder's classification accuracy on --images (the same output, --output,
// --record and --adapter handling as for language models).
void run_image_eval(const EvalArgs& a) {
  OT_REQUIRE(a.tasks.empty() && a.corpus.empty(), "--task / --corpus: ", a.model,
             " is a vision encoder (give --images FORMAT=PATH)");
  OT_REQUIRE(!a.images.empty(), "nothing to evaluate: ", a.model, " is a vision encoder, give --images FORMAT=PATH");
  auto [format, path] = split_task_arg(a.images);
  const ImageDataset data = load_image_dataset(format, path, a.split);  // the input first: fails fast
  LoadOptions lo = apply_runtime_options(a.rt);
  VisionEncoder model = load_vision_model(a.model, lo);
  const ImageProcessorConfig processor = image_processor_for_model(a.model, model->config().image_size);
  if (!a.adapter.empty())
    attach_adapter(*model, a.model, a.adapter, a.bundle,
                   "--adapter into a full model: give --bundle, the bundle the adapter was trained on (the adapter "
                   "is checked against it)");
  const std::vector<TaskResult> results =
      evaluate_image_classification(model, data, processor, format, a.batch_size, dist::host_communicator());
  std::cout << make_table(results) << std::flush;
  if (!a.output.empty()) {
    nlohmann::json config = {{"model", a.model}, {"images", a.images}, {"split", a.split},
                             {"batch_size", a.batch_size}, {"dtype", a.rt.dtype}};
    if (!a.setting.empty()) config["setting"] = a.setting;
    write_text_file_atomically(a.output, results_json(results, config).dump(2) + "\n");
  }
  if (!a.record.empty()) {
    auto rec = open_recorder(a.record, "eval", a.model, "");
    rec->set_attribute("model", a.model);
    if (!a.adapter.empty()) rec->set_attribute("adapter", a.adapter);
    record_results(*rec, a.setting.empty() ? "eval" : a.setting, results);
    rec->complete();
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Zero-shot task metrics (lm-eval-harness v0.3.0) and perplexity; image-classification accuracy");
  cmd->add_option("--model", args->model, "HF checkpoint directory or offsite bundle")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer file or directory (default: the model directory)");
  cmd->add_option("--task", args->tasks,
                  "NAME=FILE, repeatable: piqa, arc_easy, arc_challenge, openbookqa, or wikitext (a raw "
                  "wiki.*.raw file, harness rolling perplexity)");
  cmd->add_option("--corpus", args->corpus, "text file for the paper's block perplexity (one row per line)");
  cmd->add_option("--block-size", args->block_size, "tokens per block for --corpus")->capture_default_str()
      ->check(at_least(1));
  cmd->add_flag("--no-row-bos", args->no_row_bos,
                "--corpus: never put BOS before each row (default: OPT and LLaMA do, like their HF tokenizers)");
  cmd->add_option("--limit", args->limit, "score only N docs per task (the harness's seeded shuffle picks them)")
      ->check(at_least(0));
  cmd->add_option("--batch-size", args->batch_size, "requests (or blocks) per forward pass")->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--max-length", args->max_length,
                  "model window for the harness (default: n_ctx / max_position_embeddings / 2048)")
      ->check(at_least(0));
  cmd->add_option("--setting", args->setting,
                  "label for the results: zs_full, zs_emulator, ft_emulator, plugin, ft_full");
  cmd->add_option("--images", args->images,
                  "vision encoders: FORMAT=PATH of an image-classification dataset (imagefolder, cifar10, cifar100, "
                  "idx), scored by top-1 and top-5 accuracy");
  cmd->add_option("--split", args->split, "with --images: the dataset split (train or test)")->capture_default_str();
  cmd->add_option("--output", args->output, "write the results JSON {results, versions, config} here");
  cmd->add_option("--adapter", args->adapter,
                  "adapter from `ot finetune`: loaded into a bundle (ft_emulator) or plugged into a full model (plugin)");
  cmd->add_option("--bundle", args->bundle, "with --adapter and a full model: the bundle the adapter was trained on");
  cmd->add_option("--record", args->record, "record the results to this HDF5 run file");
  add_runtime_options(cmd, args->rt);
  add_precision_option(cmd, args->rt);
  cmd->callback([args] {
    if (is_vision_model_dir(args->model)) {
      run_image_eval(*args);
      return;
    }
    OT_REQUIRE(args->images.empty(), "--images: ", args->model, " is a language model (give --task or --corpus)");
    OT_REQUIRE(!args->tasks.empty() || !args->corpus.empty(), "nothing to evaluate: give --task NAME=FILE or --corpus FILE");
    if (!args->setting.empty()) parse_setting(args->setting);  // reject a bad name before the slow part
    // Read every input before loading the model so that a bad file fails fast.
    EvalSpec spec;
    for (const std::string& t : args->tasks) {
      auto [name, path] = split_task_arg(t);
      if (name == "wikitext") spec.wikitext.emplace_back(name, wikitext_pages(read_wikitext_raw(path)));
      else spec.tasks.emplace_back(name, load_task(name, path).eval_docs);
    }
    if (!args->corpus.empty()) spec.texts.emplace_back("corpus", read_text_file(args->corpus));
    spec.block_size = args->block_size;
    spec.batch_size = args->batch_size;
    spec.limit = args->limit;
    spec.max_length = args->max_length;
    spec.row_bos = !args->no_row_bos;
    spec.precision = parse_precision(args->rt.precision);

    LoadOptions lo = apply_runtime_options(args->rt);
    const std::string tok_path = args->tokenizer.empty() ? args->model : args->tokenizer;
    std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
    DecoderLM model = load_model(args->model, lo);
    if (!args->adapter.empty())
      attach_adapter(*model, args->model, args->adapter, args->bundle,
                     "--adapter into a full model: give --bundle, the bundle the adapter was trained on (the adapter "
                     "is checked against it)");
    OT_REQUIRE(tok->vocab_size() <= model->config().vocab_size, tok_path, ": tokenizer has ", tok->vocab_size(),
               " tokens but the model's vocabulary has only ", model->config().vocab_size);

    const std::vector<TaskResult> results = evaluate_model(model, *tok, spec, dist::host_communicator());
    std::cout << make_table(results) << std::flush;
    if (!args->output.empty()) {
      nlohmann::json config = {{"model", args->model},     {"tokenizer", tok_path},
                               {"batch_size", args->batch_size},
                               {"max_length", args->max_length > 0 ? args->max_length : harness_max_length(model->config())},
                               {"limit", args->limit > 0 ? nlohmann::json(args->limit) : nlohmann::json()},
                               {"num_fewshot", 0},         {"dtype", args->rt.dtype},
                               {"precision", precision_name(spec.precision)}};
      if (!args->setting.empty()) config["setting"] = args->setting;
      if (!args->corpus.empty()) {
        config["corpus"] = args->corpus;
        config["block_size"] = args->block_size;
      }
      write_text_file_atomically(args->output, results_json(results, config).dump(2) + "\n");
    }
    if (!args->record.empty()) {
      auto rec = open_recorder(args->record, "eval", args->model, "");
      rec->set_attribute("model", args->model);
      if (!args->adapter.empty()) rec->set_attribute("adapter", args->adapter);
      record_results(*rec, args->setting.empty() ? "eval" : args->setting, results);
      rec->complete();
    }
  });
}

}  // namespace ot::cli
