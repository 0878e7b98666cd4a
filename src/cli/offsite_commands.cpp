// cli/offsite_commands.cpp: the two parties' commands.
//   ot emulator  (model owner)  full model -> bundle (adapter + compressed emulator)
//   ot finetune  (data owner)   bundle -> adapter (or full model -> fine-tuned model)
// Flags map one to one onto experiment/jobs.h; every run can be recorded with --record.
#include <functional>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "experiment/jobs.h"
#include "offsite/peft_lora.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/signals.h"

namespace ot::cli {

namespace {

std::string joined_command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

std::pair<int64_t, int64_t> parse_adapter(const std::string& s) {
  auto comma = s.find(',');
  OT_REQUIRE(comma != std::string::npos, "--adapter: expected L,R (bottom,top blocks, e.g. 2,2), got '", s, "'");
  try {
    size_t a = 0, b = 0;
    int64_t l = std::stoll(s.substr(0, comma), &a), r = std::stoll(s.substr(comma + 1), &b);
    OT_REQUIRE(a == comma && b == s.size() - comma - 1, "");
    return {l, r};
  } catch (const std::exception&) {
    fail("--adapter: expected L,R with two integers (e.g. 2,2), got '", s, "'");
  }
}

}  // namespace

void register_offsite_commands(CLI::App& app, int argc, char** argv) {
  const std::string cmdline = joined_command_line(argc, argv);
  {
    struct Args {
      EmulatorJob job;
      std::string adapter = "2,2", record, distill, eval, calibration, text_field = "text";
      std::string distill_images, eval_images, calibration_images, eval_split = "test";
      int64_t block_size = 512, eval_blocks = 0, max_images = 0, max_eval_images = 0, report_batches = 4;
      bool report = false;
      RuntimeOptions rt;
    };
    auto a = std::make_shared<Args>();
    a->job.trainer.schedule = "cosine";
    a->job.trainer.lr = 1e-4;
    CLI::App* cmd = app.add_subcommand("emulator", "Build an offsite bundle: adapter + compressed emulator (model owner)");
    cmd->add_option("--model", a->job.model_dir, "the full model (HF checkpoint directory)")->required();
    cmd->add_option("--adapter", a->adapter, "L,R: bottom and top adapter blocks")->capture_default_str();
    cmd->add_option("--emulator-layers", a->job.emulator.layers, "k emulator blocks kept from the middle (0: all)")->required()->check(at_least(0));
    cmd->add_option("--strategy", a->job.emulator.strategy, "uniform, floor, cka or an index list like 0,3,5")->capture_default_str();
    cmd->add_flag("--train-head", a->job.emulator.train_head,
                  "issue the final norm and LM head with the adapter (the data owner may train them)");
    cmd->add_flag("--repeat", a->job.emulator.repeat, "keep the depth: dropped blocks replaced by the nearest kept one (CRaSh)");
    cmd->add_option("--prune", a->job.emulator.prune_ratio, "magnitude pruning ratio of emulator weights")->capture_default_str()->check(in_range(0.0, 0.999));
    cmd->add_option("--svd", a->job.emulator.svd,
                    "rank compression of the emulator's attention projections: a rank >= 1, or the energy fraction "
                    "(0, 1) of squared singular values kept; stored as two factors")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--prune-channels", a->job.emulator.prune_channels,
                    "share of each emulator block's MLP channels removed (structured)")
        ->capture_default_str()->check(in_range(0.0, 0.999));
    cmd->add_option("--channel-score", a->job.emulator.channel_score,
                    "magnitude, or gradot (Fisher curvature and loss gap on --calibration text)")
        ->capture_default_str()->check(CLI::IsMember({"magnitude", "gradot"}));
    cmd->add_option("--gradot-lambda", a->job.emulator.gradot_lambda,
                    "gradot: weight of the loss-gap (privacy) term")->capture_default_str()->check(at_least(0.0));
    cmd->add_option("--replace-layers", a->job.emulator.replace_layers,
                    "harmonizers (low-rank residual MLPs trained by the distillation) in place of emulator blocks: a "
                    "ratio like 0.5 (the least important of every --replace-group blocks, scored on --calibration) "
                    "or original block indices like 5,7");
    cmd->add_option("--replace-group", a->job.emulator.replace_group, "blocks per group for a --replace-layers ratio")
        ->capture_default_str()->check(at_least(1));
    cmd->add_option("--harmonizer-rank", a->job.emulator.harmonizer_rank,
                    "rank of each harmonizer (default: hidden size / 4, at most 64)")->check(at_least(1));
    cmd->add_option("--quantize", a->job.emulator.quantize_bits, "uniform quantization bits of emulator weights (0: off)")->capture_default_str()->check(in_range(0, 16));
    cmd->add_option("--distill", a->distill, "distil the emulator on this corpus (text or JSONL)");
    cmd->add_option("--eval-corpus", a->eval, "perplexity text for choosing the best distilled emulator");
    cmd->add_option("--eval-blocks", a->eval_blocks, "use only the first N blocks of --eval-corpus (0: all)")->check(at_least(0));
    cmd->add_option("--calibration", a->calibration,
                    "text for --strategy cka, the block importance of --replace-layers and --channel-score gradot");
    cmd->add_option("--distill-images", a->distill_images,
                    "vision: distil the emulator by feature KD on these images, FORMAT=PATH (train split)");
    cmd->add_option("--eval-images", a->eval_images,
                    "vision: held-out images, FORMAT=PATH; the distilled emulator with the lowest mean KD loss on them is kept");
    cmd->add_option("--calibration-images", a->calibration_images,
                    "vision: images for --strategy cka and --replace-layers, FORMAT=PATH (train split; the first 64)");
    cmd->add_option("--eval-split", a->eval_split, "split of --eval-images")->capture_default_str();
    cmd->add_option("--max-images", a->max_images, "use only the first N distillation images (0: all)")->check(at_least(0));
    cmd->add_option("--max-eval-images", a->max_eval_images, "use only the first N held-out images (0: all)")->check(at_least(0));
    cmd->add_option("--num-labels", a->job.num_labels,
                    "vision: issue the bundle with a new classifier of N classes, trainable with the adapter")
        ->check(at_least(1));
    cmd->add_option("--text-field", a->text_field, "JSONL field holding the text")->capture_default_str();
    cmd->add_option("--tokenizer", a->job.tokenizer, "tokenizer (default: the model directory)");
    cmd->add_option("--block-size", a->block_size, "tokens per training block")->capture_default_str()->check(in_range(2, 1 << 24));
    CLI::Option* kd = cmd->add_option("--kd-weight", a->job.distill_loss.kd_weight,
                                      "weight of the normalised-MSE KD loss (vision default: 1)")
                          ->capture_default_str()->check(at_least(0));
    CLI::Option* lm = cmd->add_option("--lm-weight", a->job.distill_loss.lm_weight,
                                      "weight of the LM loss (vision default: 0, feature KD alone)")
                          ->capture_default_str()->check(at_least(0));
    cmd->add_option("--cache-dir", a->job.cache_dir, "token cache directory");
    cmd->add_flag("--layerwise-kd", a->job.distill_loss.layerwise,
                  "distil every emulator block toward its teacher block (FedBiOT), not only the emulator's output");
    cmd->add_flag("--report", a->report,
                  "print the gradient alignment: cosine of the adapter's gradients through the emulator and through "
                  "the full model, per adapter block, before and after distillation");
    cmd->add_option("--report-batches", a->report_batches, "batches of --eval-corpus (else --distill) for --report")
        ->capture_default_str()->check(at_least(1));
    cmd->add_option("--record", a->record, "record the run to this HDF5 file");
    cmd->add_flag("--hash-files", a->job.hash_files, "record the SHA-256 digest of the bundle written (with --record)");
    cmd->add_option("--out", a->job.out_dir, "bundle directory to write")->required();
    add_training_command_options(cmd, a->job.trainer, a->rt);
    cmd->callback([a, cmdline, lm, kd] {
      a->job.load = apply_training_command_options(a->rt, a->job.trainer);
      std::tie(a->job.emulator.bottom, a->job.emulator.top) = parse_adapter(a->adapter);
      auto spec = [&](const std::string& p, int64_t max_blocks) {
        return std::optional<CorpusSpec>(CorpusSpec{p, a->text_field, a->block_size, max_blocks});
      };
      if (a->report) a->job.report_batches = a->report_batches;
      if (!a->distill.empty()) a->job.distill = spec(a->distill, 0);
      if (!a->eval.empty()) a->job.eval = spec(a->eval, a->eval_blocks);
      if (!a->calibration.empty()) a->job.calibration = spec(a->calibration, 16);
      if (!a->distill_images.empty())
        a->job.distill_images = parse_image_spec("--distill-images", a->distill_images, "train", a->max_images);
      if (!a->eval_images.empty())
        a->job.eval_images = parse_image_spec("--eval-images", a->eval_images, a->eval_split, a->max_eval_images);
      if (!a->calibration_images.empty())
        a->job.calibration_images = parse_image_spec("--calibration-images", a->calibration_images, "train");
      if (is_vision_model_dir(a->job.model_dir)) {  // the paper distils vision encoders by feature KD alone
        if (lm->count() == 0) a->job.distill_loss.lm_weight = 0.0;
        if (kd->count() == 0) a->job.distill_loss.kd_weight = 1.0;
      }
      install_stop_signals();
      auto rec = open_recorder(a->record, "emulator", cmdline, "");
      run_recorded(rec.get(), [&] {
        EmulatorOutcome o = run_emulator_job(a->job, rec.get());
        std::ostringstream os;
        os << a->job.out_dir << ": bundle of " << o.layout.block_origin.size() << " blocks from "
           << o.layout.num_original << " (blocks";
        for (int64_t b : o.layout.block_origin) os << " " << b;
        os << ")";
        if (o.full_ppl) os << "; ppl full " << *o.full_ppl << ", emulator " << *o.zs_emulator_ppl;
        if (o.distilled_emulator_ppl) os << ", distilled emulator " << *o.distilled_emulator_ppl;
        if (o.zs_emulator_kd) os << "; held-out KD emulator " << *o.zs_emulator_kd;
        if (o.distilled_emulator_kd) os << ", distilled emulator " << *o.distilled_emulator_kd;
        std::cout << os.str() << "\n";
        if (o.zs_alignment) std::cout << format_gradient_alignment(*o.zs_alignment, o.distilled_alignment);
      });
    });
  }
  {
    struct Args {
      FinetuneJob job;
      std::string record, corpus, eval_corpus, text_field = "text", images, eval_images, eval_split = "test";
      int64_t prefix = -1, max_images = 0;
      RuntimeOptions rt;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune the adapter of a bundle, or a full model (data owner)");
    cmd->add_option("--model", a->job.model_dir, "offsite bundle (or a full model for the full fine-tuning baseline)")->required();
    cmd->add_option("--trainable", a->job.trainable, "adapter, emulator, or all (every parameter: full fine-tuning)")->capture_default_str();
    cmd->add_flag("--freeze-bottom", a->job.freeze_bottom, "train only the top adapter blocks");
    cmd->add_flag("--train-head", a->job.train_head, "also train the final norm and LM head (where the bundle issues them)");
    cmd->add_option("--peft", a->job.peft.method,
                    "none, lora, bitfit or adapter (lora on the adapter blocks alone also writes PEFT's LoRA layout to OUT/peft/)")->capture_default_str();
    cmd->add_option("--lora-rank", a->job.peft.lora_rank, "LoRA rank")->capture_default_str()->check(at_least(1));
    cmd->add_option("--lora-alpha", a->job.peft.lora_alpha, "LoRA alpha")->capture_default_str()->check(at_least(0));
    cmd->add_option("--lora-dropout", a->job.peft.lora_dropout, "LoRA dropout")->capture_default_str()->check(in_range(0.0, 1.0));
    cmd->add_option("--lora-targets", a->job.peft.lora_targets, "projection names (default: the paper's)")->delimiter(',');
    cmd->add_option("--adapter-size", a->job.peft.adapter_size, "bottleneck adapter size")->capture_default_str()->check(at_least(1));
    cmd->add_option("--task", a->job.task, "piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, webqs, race");
    cmd->add_option("--train-file", a->job.train_file, "the task's training file");
    cmd->add_option("--validation-file", a->job.validation_file, "validation file (default: the first 5% of train)");
    cmd->add_option("--corpus", a->corpus, "or language modelling on this text/JSONL");
    cmd->add_option("--eval-corpus", a->eval_corpus, "validation text for --corpus");
    cmd->add_option("--images", a->images, "or, for a vision encoder, classification on these images: FORMAT=PATH "
                    "(imagefolder, cifar10, cifar100, idx; train split)");
    cmd->add_option("--eval-images", a->eval_images, "validation images for --images, FORMAT=PATH (default: a seeded "
                    "--validation-percent of the training images)");
    cmd->add_option("--eval-split", a->eval_split, "split of --eval-images")->capture_default_str();
    cmd->add_option("--validation-percent", a->job.validation_percent, "with --images and no --eval-images: share "
                    "of the training images held out")->capture_default_str()->check(in_range(0, 100));
    cmd->add_option("--max-images", a->max_images, "use only the first N training images (0: all)")->check(at_least(0));
    cmd->add_flag("--new-classifier", a->job.new_classifier,
                  "full model: a new classifier over the images' classes (replacing any it has)");
    cmd->add_option("--text-field", a->text_field, "JSONL field holding the text")->capture_default_str();
    cmd->add_option("--block-size", a->job.block_size, "longest sequence")->capture_default_str()->check(in_range(2, 1 << 24));
    cmd->add_option("--prefix-token", a->prefix, "id placed before every training example (OPT: 2)")->check(at_least(0));
    cmd->add_option("--max-eval-examples", a->job.max_eval_examples, "cap on validation examples (0: all)")->check(at_least(0));
    cmd->add_flag("--skip-malformed", a->job.skip_malformed, "count and skip malformed task records instead of failing");
    cmd->add_option("--tokenizer", a->job.tokenizer, "tokenizer (default: the model directory)");
    cmd->add_option("--cache-dir", a->job.cache_dir, "token cache directory");
    cmd->add_option("--record", a->record, "record the run to this HDF5 file");
    cmd->add_flag("--hash-files", a->job.hash_files,
                  "record the SHA-256 digests of the bundle received and the adapter written (with --record)");
    cmd->add_option("--out", a->job.out_dir, "adapter directory (bundle: offsite_adapter.json, adapter.safetensors, "
                    "and peft/ for LoRA) or model directory (full model)")->required();
    add_training_command_options(cmd, a->job.trainer, a->rt);
    cmd->callback([a, cmdline] {
      a->job.load = apply_training_command_options(a->rt, a->job.trainer);
      if (a->prefix >= 0) a->job.prefix_token = a->prefix;
      if (!a->corpus.empty()) a->job.corpus = CorpusSpec{a->corpus, a->text_field, a->job.block_size, 0};
      if (!a->eval_corpus.empty()) a->job.eval_corpus = CorpusSpec{a->eval_corpus, a->text_field, a->job.block_size, 0};
      if (!a->images.empty()) a->job.images = parse_image_spec("--images", a->images, "train", a->max_images);
      if (!a->eval_images.empty()) a->job.eval_images = parse_image_spec("--eval-images", a->eval_images, a->eval_split);
      OT_REQUIRE(int(!a->job.task.empty()) + int(!a->corpus.empty()) + int(!a->images.empty()) == 1,
                 "give exactly one of --task (with --train-file), --corpus or --images");
      install_stop_signals();
      auto rec = open_recorder(a->record, "finetune", cmdline, "");
      run_recorded(rec.get(), [&] {
        FinetuneOutcome o = run_finetune_job(a->job, rec.get());
        std::cout << a->job.out_dir << ": " << (o.wrote_adapter ? "adapter" : "fine-tuned model") << " after "
                  << o.train.steps << " steps, " << o.trainable_params << " of " << o.total_params
                  << " parameters trained";
        if (o.train.best_step >= 0) std::cout << ", best validation loss " << o.train.best_metric << " at step " << o.train.best_step;
        if (o.wrote_peft) std::cout << "; PEFT LoRA layout in " << path_join(a->job.out_dir, kPeftExportDir);
        std::cout << "\n";
      });
    });
  }
}

}  // namespace ot::cli
