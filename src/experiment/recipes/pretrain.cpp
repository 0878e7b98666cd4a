// experiment/recipes/pretrain.cpp: recipe pretrain: the model owner's foundation model from
// [model.init] (pretrained once per configuration, cached), evaluated as zs_full.
#include "experiment/recipes/recipe.h"

namespace ot::experiment {

namespace {

class PretrainRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    const std::string model = run.workspace().ensure_foundation_model();
    run.evaluate("zs_full", model, "", run.eval_spec());
  }
};

}  // namespace

std::unique_ptr<Recipe> make_pretrain_recipe() { return std::make_unique<PretrainRecipe>(); }

}  // namespace ot::experiment
