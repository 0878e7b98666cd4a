// experiment/recipes/efficiency.cpp: recipe efficiency: fine-tuning throughput and peak
// memory of one method (efficiency.method) on random weights of the model's shape, measured
// in a fresh process so that its peak memory is its own (offsite/efficiency.h).
#include <iomanip>
#include <iostream>

#include "experiment/recipes/recipe.h"
#include "offsite/efficiency.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

class EfficiencyRecipe : public Recipe {
 public:
  void run(RunContext& run) const override {
    const ExperimentSpec& s = run.spec();
    EfficiencyRequest request;
    request.method = s.efficiency.method;
    request.seq_len = s.efficiency.seq_len;
    request.batch = s.efficiency.batch;
    request.steps = s.efficiency.steps;
    request.warmup_steps = s.efficiency.warmup_steps;
    request.bottom = s.emulator.options.bottom;
    request.top = s.emulator.options.top;
    request.emulator_layers = s.emulator.options.layers;
    request.threads = s.runtime.threads;
    request.device = s.runtime.device;
    request.precision = precision_name(s.runtime.precision);
    request.checkpoint_activations = s.runtime.checkpoint_activations;
    request.shape = s.efficiency.shape;
    if (request.shape.empty()) request.config_path = path_join(run.workspace().ensure_foundation_model(), "config.json");
    std::cerr << "efficiency: measuring " << request.method << " in a fresh process\n";
    const EfficiencyResult r = run_efficiency_method_in_child(request);
    if (results::RunRecorder* rec = run.recorder()) {
      rec->set_attribute("method", request.method);
      rec->set_efficiency("tokens_per_s", r.tokens_per_s, "tokens/s");
      rec->set_efficiency("peak_memory_mib", r.peak_memory_mib, "MiB");
      rec->set_efficiency("trainable_params", double(r.trainable_params), "parameters");
      rec->set_efficiency("total_params", double(r.total_params), "parameters");
      rec->set_efficiency("step_seconds", r.step_seconds, "s");
      rec->set_efficiency("flops_per_token", r.flops_per_token, "FLOP");
      if (r.peak_gpu_memory_mib > 0) rec->set_efficiency("peak_gpu_memory_mib", r.peak_gpu_memory_mib, "MiB");
      if (r.mfu > 0) rec->set_efficiency("mfu", r.mfu, "fraction");
      rec->set_attribute("device_name", r.device);
    }
    std::cout << request.method << ": " << std::fixed << std::setprecision(0) << r.tokens_per_s << " tokens/s, "
              << r.peak_memory_mib << " MiB peak, " << r.trainable_params << " of " << r.total_params
              << " parameters trained\n";
  }
};

}  // namespace

std::unique_ptr<Recipe> make_efficiency_recipe() { return std::make_unique<EfficiencyRecipe>(); }

}  // namespace ot::experiment
