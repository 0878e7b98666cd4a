// experiment/recipes/offsite.cpp: recipe offsite, the paper's comparison: the bundle
// (emulator + distillation, or emulator.bundle), the adapter fine-tuned on it, the full
// fine-tuning baseline, and the settings of eval.settings among zs_full, zs_emulator,
// ft_emulator, plugin (the adapter plugged into the full model) and ft_full.
#include <algorithm>

#include "experiment/recipes/recipe.h"
#include "model/load.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

class OffsiteRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    const ExperimentSpec& s = run.spec();
    auto wants = [&](const char* setting) {
      return std::find(s.eval.settings.begin(), s.eval.settings.end(), setting) != s.eval.settings.end();
    };
    const std::string& run_dir = run.workspace().run_dir();
    const std::string full = run.workspace().ensure_foundation_model();
    std::string bundle = s.emulator.bundle;
    const std::string adapter = path_join(run_dir, "adapter");
    const EvalSpec spec = run.eval_spec();  // fail on a bad eval input before the long steps
    if (bundle.empty()) {
      bundle = path_join(run_dir, "bundle");
      run.bundle_stage(bundle);
    } else {
      OT_REQUIRE(file_exists(path_join(bundle, "config.json")), "emulator.bundle: '", bundle,
                 "' is not a bundle directory (make one with recipe distill)", s.where("emulator.bundle"));
      if (run.recorder()) run.recorder()->set_attribute("bundle", bundle);
      if (is_vision_model_dir(bundle)) {
        // A distilled vision bundle serves every dataset: the owner issues it anew with a
        // classifier for this run's classes.
        const std::string issued = path_join(run_dir, "bundle");
        const int64_t classes = run.workspace().images(s.finetune.data)->num_classes();
        run.stage(issued, "bundle for the fine-tuning classes", [&](const std::string& out) {
          reissue_vision_bundle(bundle, classes, s.seed, out, s.runtime.load);
        });
        bundle = issued;
      }
    }
    run.stage(adapter, "adapter fine-tuning", [&](const std::string& out) {
      run_finetune_job(run.finetune_job(bundle, out, "finetune", s.finetune, "adapter"), run.recorder());
    });
    std::string full_ft;
    if (wants("ft_full") && s.full_finetune.enabled) {
      full_ft = path_join(run_dir, "full_finetune");
      run.stage(full_ft, "full fine-tuning", [&](const std::string& out) {
        run_finetune_job(run.finetune_job(full, out, "full_finetune", s.full_finetune, "all"), run.recorder());
      });
    }
    if (wants("zs_full")) run.evaluate("zs_full", full, "", spec);
    if (wants("zs_emulator")) run.evaluate("zs_emulator", bundle, "", spec);
    if (wants("ft_emulator")) run.evaluate("ft_emulator", bundle, adapter, spec);
    if (wants("plugin")) run.evaluate("plugin", full, adapter, spec, bundle);
    if (!full_ft.empty()) run.evaluate("ft_full", full_ft, "", spec);
  }
};

}  // namespace

std::unique_ptr<Recipe> make_offsite_recipe() { return std::make_unique<OffsiteRecipe>(); }

}  // namespace ot::experiment
