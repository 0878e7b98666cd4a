// experiment/recipes/registry.cpp: the recipes by name (experiment.recipe). The schema
// (experiment/schema.cpp) lists the same names as the key's allowed values.
#include <map>

#include "experiment/recipes/recipe.h"
#include "util/error.h"

namespace ot::experiment {

namespace {

const std::map<std::string, std::unique_ptr<Recipe>>& registry() {
  static const auto* r = [] {
    auto* m = new std::map<std::string, std::unique_ptr<Recipe>>();
    m->emplace("pretrain", make_pretrain_recipe());
    m->emplace("distill", make_distill_recipe());
    m->emplace("finetune", make_finetune_recipe());
    m->emplace("eval", make_eval_recipe());
    m->emplace("efficiency", make_efficiency_recipe());
    m->emplace("offsite", make_offsite_recipe());
    return m;
  }();
  return *r;
}

}  // namespace

std::vector<std::string> recipe_names() {
  std::vector<std::string> names;
  for (const auto& [name, recipe] : registry()) names.push_back(name);
  return names;
}

const Recipe& recipe_named(const std::string& name, const std::string& where) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : recipe_names()) known += (known.empty() ? "" : ", ") + n;
    fail("experiment.recipe: unknown recipe '", name, "' (expected one of ", known, ")", where);
  }
  return *it->second;
}

}  // namespace ot::experiment
