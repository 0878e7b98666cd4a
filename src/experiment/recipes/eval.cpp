// experiment/recipes/eval.cpp: recipe eval: harness tasks and block perplexity of one model
// (eval.model, else the foundation model), optionally with an adapter loaded into it (a
// bundle) or plugged in (a full model, checked against eval.bundle).
#include "checkpoint/hf_checkpoint.h"
#include "experiment/recipes/recipe.h"
#include "model/config.h"
#include "model/offsite_section.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

class EvalRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    const EvalSectionSpec& e = run.spec().eval;
    std::string model = e.model;
    if (model.empty()) model = run.workspace().ensure_foundation_model();
    OT_REQUIRE(file_exists(path_join(model, "config.json")), "eval.model: '", model, "' is not a checkpoint directory",
               run.spec().where("eval.model"));
    // Said before the evaluation data is read.
    OT_REQUIRE(e.adapter.empty() || !e.bundle.empty() || is_offsite_bundle(load_hf_config(model)),
               "eval.adapter: plugging an adapter into the full model needs the bundle it was trained on (eval.bundle)",
               run.spec().where("eval.adapter"));
    run.evaluate(e.setting, model, e.adapter, run.eval_spec(), e.bundle);
  }
};

}  // namespace

std::unique_ptr<Recipe> make_eval_recipe() { return std::make_unique<EvalRecipe>(); }

}  // namespace ot::experiment
