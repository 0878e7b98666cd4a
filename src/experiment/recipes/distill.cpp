// experiment/recipes/distill.cpp: recipe distill: the emulator (+ distillation) of the
// foundation model as an offsite bundle (emulator.save_to, else the run's directory),
// evaluated beside the full model (zs_full, zs_emulator).
#include "experiment/recipes/recipe.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

class DistillRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    std::string bundle = run.spec().emulator.save_to;
    if (bundle.empty()) bundle = path_join(run.workspace().run_dir(), "bundle");
    run.bundle_stage(bundle);
    const EvalSpec spec = run.eval_spec();
    run.evaluate("zs_full", run.workspace().ensure_foundation_model(), "", spec);
    run.evaluate("zs_emulator", bundle, "", spec);
  }
};

}  // namespace

std::unique_ptr<Recipe> make_distill_recipe() { return std::make_unique<DistillRecipe>(); }

}  // namespace ot::experiment
