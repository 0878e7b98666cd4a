// experiment/recipes/recipe.h: what a recipe is, the steps recipes share, and the registry
// by name (experiment.recipe). A recipe chains stages (a trainer job whose output directory
// appears whole, so a continued attempt skips it) and evaluations of the models they made.
// The recipes, one file each:
//   pretrain    the model owner's foundation model from [model.init] (cached by configuration)
//   distill     emulator (+ distillation) of the foundation model: an offsite bundle
//   finetune    fine-tuning of a bundle's adapter or of a full model
//   eval        harness tasks and block perplexity of one model (optionally with an adapter)
//   efficiency  fine-tuning throughput and peak memory of one method, in a fresh process
//   offsite     the paper's comparison: emulator, adapter fine-tuning on it, the full
//               fine-tuning baseline and the five settings zs_full, zs_emulator, ft_emulator,
//               plugin and ft_full
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eval/harness.h"
#include "experiment/jobs.h"
#include "experiment/spec.h"
#include "experiment/workspace.h"
#include "results/run_file.h"

namespace ot::experiment {

// One evaluation row of a run: its setting and the result.
using SettingResult = std::pair<std::string, TaskResult>;

// A run in progress: its configuration, its files, its recorder and the rows evaluated so far.
class RunContext {
 public:
  RunContext(const ExperimentSpec& spec, Workspace& workspace, results::RunRecorder* rec)
      : spec_(spec), workspace_(workspace), rec_(rec) {}

  const ExperimentSpec& spec() const { return spec_; }
  Workspace& workspace() { return workspace_; }
  results::RunRecorder* recorder() { return rec_; }
  const std::vector<SettingResult>& rows() const { return rows_; }

  // Runs `make` (given a staging directory) unless `out` exists from an earlier attempt; the
  // staging directory becomes `out` once the stage's records are in the run file.
  void stage(const std::string& out, const std::string& what, const std::function<void(const std::string&)>& make);

  // The bundle stage: emulator + distillation of the foundation model, written to `bundle`.
  void bundle_stage(const std::string& bundle);

  // What the run evaluates ([eval]: tasks, or the fine-tuning task, and texts); throws for a
  // task without evaluation files.
  EvalSpec eval_spec();

  // Scores `model` (with `adapter` when given) as rows of `setting`, recorded. `bundle`: the
  // bundle `adapter` was trained on, the record it is checked against when plugged into a full
  // model.
  void evaluate(const std::string& setting, const std::string& model, const std::string& adapter, const EvalSpec& spec,
                const std::string& bundle = "");

  // Fine-tuning of `model` into `out` with the data of [finetune] and the training settings
  // of `section` ([finetune] or [full_finetune]); `label` names its curves and state file.
  FinetuneJob finetune_job(const std::string& model, const std::string& out, const std::string& label,
                           const TrainingSpec& section, const std::string& trainable);

 private:
  void evaluate_images(const std::string& setting, const std::string& model, const std::string& adapter,
                       const std::string& bundle);
  EmulatorJob emulator_job(const std::string& out);

  const ExperimentSpec& spec_;
  Workspace& workspace_;
  results::RunRecorder* rec_;
  std::vector<SettingResult> rows_;
};

class Recipe {
 public:
  virtual ~Recipe() = default;
  virtual void run(RunContext& run) const = 0;
};

// The recipe called `name`; an unknown name is an error naming experiment.recipe (at `where`)
// and the recipes there are.
const Recipe& recipe_named(const std::string& name, const std::string& where = "");
// Every registered recipe's name.
std::vector<std::string> recipe_names();

// The recipes (each in its own file), for the registry.
std::unique_ptr<Recipe> make_pretrain_recipe();
std::unique_ptr<Recipe> make_distill_recipe();
std::unique_ptr<Recipe> make_finetune_recipe();
std::unique_ptr<Recipe> make_eval_recipe();
std::unique_ptr<Recipe> make_efficiency_recipe();
std::unique_ptr<Recipe> make_offsite_recipe();

}  // namespace ot::experiment
