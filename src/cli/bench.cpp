// cli/bench.cpp: `ot bench offsite`: the paper's efficiency table measured on this
// machine. Runs full fine-tuning, full + LoRA, offsite (l-k-r) and offsite + LoRA on one
// model shape, each in a fresh child process (so peak memory is its own), and prints
// throughput and memory ratios to full fine-tuning next to the paper's, with the GEMM rate
// measured before and after the runs. Each child is handed its method as a JSON request
// (--request FILE, offsite/efficiency.h); --only runs one method in this process.
// `ot bench gemm`: that rate alone.

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "dist/context.h"
#include "model/shapes.h"
#include "offsite/efficiency.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/gemm_rate.h"
#include "util/gpu.h"
#include "util/host_threads.h"

namespace ot::cli {

void register_bench(CLI::App& app) {
  struct Args {
    std::string shape = "opt-125m", config, only, request, json_out;
    std::string adapter = "2,2";
    int64_t emulator_layers = 0;
    EfficiencyOptions eo;
    std::vector<std::string> methods = {"ft", "ft_lora", "ot", "ot_lora"};
    int64_t ranks = 1;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* bench = app.add_subcommand("bench", "Measure performance on this machine");
  bench->require_subcommand(1);
  {
    struct GemmArgs {
      int64_t n = 2048;
      double seconds = 1.0;
      RuntimeOptions rt;
    };
    auto g = std::make_shared<GemmArgs>();
    CLI::App* gemm = bench->add_subcommand("gemm", "The machine's fp32 matrix-multiply rate now (quote it beside any timing)");
    gemm->add_option("--n", g->n, "square matrix size")->capture_default_str()->check(in_range(16, 16384));
    gemm->add_option("--seconds", g->seconds, "measure for at least this long")->capture_default_str()->check(in_range(0.0, 600.0));
    add_runtime_options(gemm, g->rt);
    gemm->callback([g] {
      const LoadOptions lo = apply_runtime_options(g->rt);
      std::cout << describe(measure_gemm_rate(lo.device, g->n, g->seconds)) << std::endl;
    });
  }
  CLI::App* cmd = bench->add_subcommand("offsite", "Fine-tuning throughput and peak memory: FT, FT+LoRA, OT, OT+LoRA");
  cmd->add_option("--shape", args->shape, "model shape: opt-125m, opt-1.3b, opt-6.7b, gpt2, gpt2-xl")->capture_default_str();
  cmd->add_option("--config", args->config, "or a config.json giving the shape");
  cmd->add_option("--adapter", args->adapter, "bottom,top adapter blocks")->capture_default_str();
  cmd->add_option("--emulator-layers", args->emulator_layers, "emulator blocks k (0: 40% of the middle, as OPT-1.3B 2-8-2)")->check(at_least(0));
  cmd->add_option("--seq-len", args->eo.seq_len, "tokens per sequence")->capture_default_str()->check(at_least(1));
  cmd->add_option("--batch", args->eo.batch, "sequences per step")->capture_default_str()->check(at_least(1));
  cmd->add_option("--steps", args->eo.steps, "timed optimizer steps")->capture_default_str()->check(at_least(1));
  cmd->add_option("--warmup", args->eo.warmup_steps, "untimed steps first")->capture_default_str()->check(at_least(0));
  cmd->add_option("--methods", args->methods, "subset of ft ft_lora ot ot_lora")->delimiter(',');
  cmd->add_option("--ranks", args->ranks,
                  "data-parallel ranks per method, started with mpirun -np N ($OT_MPIRUN); --batch is theirs together")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--json", args->json_out, "also write the results as JSON");
  cmd->add_option("--only", args->only, "run one method in this process and print JSON");
  // How a parent hands one method to its child process (offsite/efficiency.h).
  cmd->add_option("--request", args->request, "run the method of this efficiency request (JSON) and print JSON")
      ->group("");
  add_runtime_options(cmd, args->rt);
  add_precision_option(cmd, args->rt);
  add_checkpointing_option(cmd, args->rt);
  cmd->callback([args] {
    const LoadOptions lo = apply_runtime_options(args->rt);
    OT_REQUIRE(lo.dtype == c10::kFloat, "bench offsite: weights are fp32 (the paper's setting); for 16-bit compute use "
               "--precision bf16 or fp16, not --dtype");
    if (!args->request.empty()) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_text_file(args->request));
      } catch (const nlohmann::json::exception& e) {
        fail(args->request, ": not valid JSON (", e.what(), ")");
      }
      const EfficiencyRequest request = efficiency_request_from_json(j, args->request);
      set_host_threads(static_cast<int>(request.threads));
      const EfficiencyResult r = run_efficiency_method(request.method, efficiency_options_of(request));
      if (dist::is_writer()) std::cout << r.to_json().dump() << std::endl;  // the team's result, once
      return;
    }
    EfficiencyRequest request;
    request.shape = args->shape;
    request.config_path = args->config;
    auto comma = args->adapter.find(',');
    OT_REQUIRE(comma != std::string::npos, "--adapter: expected L,R (e.g. 2,2), got '", args->adapter, "'");
    request.bottom = std::stoll(args->adapter.substr(0, comma));
    request.top = std::stoll(args->adapter.substr(comma + 1));
    request.emulator_layers = args->emulator_layers;
    request.seq_len = args->eo.seq_len;
    request.batch = args->eo.batch;
    request.warmup_steps = args->eo.warmup_steps;
    request.steps = args->eo.steps;
    request.device = args->rt.device;
    request.precision = args->rt.precision;
    request.threads = args->rt.threads;
    request.checkpoint_activations = args->rt.checkpoint_activations;
    request.ranks = args->ranks;
    OT_REQUIRE(request.batch % request.ranks == 0, "bench offsite: --batch ", request.batch, " does not split over --ranks ",
               request.ranks, ": give a multiple of ", request.ranks);
    const EfficiencyOptions eo = efficiency_options_of(request);
    request.emulator_layers = eo.emulator_layers;
    if (!args->only.empty()) {
      std::cout << run_efficiency_method(args->only, eo).to_json().dump() << std::endl;
      return;
    }
    std::cerr << "bench offsite: " << (args->config.empty() ? args->shape : args->config) << ", "
              << eo.bottom << "-" << eo.emulator_layers << "-" << eo.top << ", batch " << eo.batch << " x "
              << eo.seq_len << " tokens"
              << (request.ranks > 1 ? " over " + std::to_string(request.ranks) + " data-parallel ranks" : std::string())
              << ", " << eo.steps << " timed steps per method, " << gpu::device_name(eo.device)
              << ", precision " << precision_name(eo.precision)
              << (eo.checkpoint_activations ? ", activation checkpointing" : "") << "\n";
    // The machine's speed now and after the runs: a ratio of two runs means little when the
    // GEMM rates beside them differ.
    // A team's rate is that of all its cores: the GEMM runs with as many threads as the team has.
    if (request.ranks > 1) set_host_threads(static_cast<int>(request.ranks * std::max<int64_t>(1, request.threads)));
    const GemmRate gemm_start = measure_gemm_rate(eo.device);
    std::cerr << "  " << describe(gemm_start) << " (before)\n";
    std::vector<EfficiencyResult> results;
    for (const auto& method : args->methods) {
      std::cerr << "  running " << method << " ...\n";
      request.method = method;
      results.push_back(run_efficiency_method_in_child(request));
    }
    const EfficiencyResult* ft = nullptr;
    for (const auto& r : results)
      if (r.method == "ft") ft = &r;
    auto paper = [](const std::string& model, const std::string& method) -> const PaperEfficiency* {
      for (const auto& p : paper_efficiency_table())
        if (p.model == model && p.method == method) return &p;
      return nullptr;
    };
    std::ostringstream os;
    os << std::fixed;
    const bool gpu_run = eo.device.is_cuda();
    // Beside each throughput, the model FLOP rate it means and its share of the GEMM rate
    // measured before the runs: a slow hour lowers both, a slow change only the share.
    os << "| method | tokens/s | GFLOP/s (x GEMM) | peak host MiB | " << (gpu_run ? "peak GPU MiB | MFU | " : "")
       << "trainable | speedup | memory / FT | paper OPT-1.3B speedup, memory | paper GPT2-XL speedup, memory |\n";
    os << "|---|---|---|---|" << (gpu_run ? "---|---|" : "") << "---|---|---|---|---|\n";
    for (const auto& r : results) {
      const double gflops = r.tokens_per_s * r.flops_per_token * 1e-9;
      os << "| " << r.method << " | " << std::setprecision(0) << r.tokens_per_s << " | " << std::setprecision(1)
         << gflops << " (" << std::setprecision(2) << gflops / gemm_start.gflops << ") | " << std::setprecision(0)
         << r.peak_memory_mib << " | ";
      if (gpu_run) {
        os << r.peak_gpu_memory_mib << " | ";
        if (r.mfu > 0) os << std::setprecision(1) << 100.0 * r.mfu << "% | ";
        else os << "- | ";
      }
      os << r.trainable_params << " | ";
      if (ft) os << std::setprecision(2) << r.tokens_per_s / ft->tokens_per_s << "x | " << ft->compared_memory_mib() / r.compared_memory_mib() << "x less | ";
      else os << "- | - | ";
      for (const char* model : {"OPT-1.3B", "GPT2-XL"}) {
        auto* p = paper(model, r.method);
        auto* pf = paper(model, "ft");
        os << std::setprecision(2) << p->throughput / pf->throughput << "x, " << pf->memory / p->memory << "x less | ";
      }
      os << "\n";
    }
    const GemmRate gemm_end = measure_gemm_rate(eo.device);
    os << "\n" << describe(gemm_start) << " before, " << std::setprecision(1) << gemm_end.gflops << " after the runs\n";
    std::cout << os.str();
    if (!args->json_out.empty()) {
      nlohmann::json j = {{"gemm", {{"n", gemm_start.n}, {"device", gemm_start.device}, {"threads", gemm_start.threads},
                                    {"gflops_before", gemm_start.gflops}, {"gflops_after", gemm_end.gflops}}},
                          {"methods", nlohmann::json::array()}};
      for (const auto& r : results) j["methods"].push_back(r.to_json());
      write_text_file_atomically(args->json_out, j.dump(2) + "\n");
    }
  });
}

}  // namespace ot::cli
