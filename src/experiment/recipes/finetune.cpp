// experiment/recipes/finetune.cpp: recipe finetune: fine-tuning of the foundation model (a
// bundle's adapter, or a full model: finetune.trainable), evaluated as ft_emulator (an
// adapter, on the model it was trained in) or ft_full (a full model).
#include "experiment/recipes/recipe.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

class FinetuneRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    const FinetuneSpec& f = run.spec().finetune;
    const std::string out = path_join(run.workspace().run_dir(), "finetuned");
    const std::string base = run.workspace().ensure_foundation_model();
    run.stage(out, "fine-tuning", [&](const std::string& partial) {
      run_finetune_job(run.finetune_job(base, partial, "finetune", f, f.trainable), run.recorder());
    });
    const EvalSpec spec = run.eval_spec();
    const bool full_model = file_exists(path_join(out, "config.json"));  // else an adapter
    if (!full_model) run.evaluate("ft_emulator", base, out, spec);
    else run.evaluate("ft_full", out, "", spec);
  }
};

}  // namespace

std::unique_ptr<Recipe> make_finetune_recipe() { return std::make_unique<FinetuneRecipe>(); }

}  // namespace ot::experiment
