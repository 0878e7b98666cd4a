// offsite/efficiency.h: the paper's efficiency comparison (its Table 6): fine-tuning
// throughput and peak memory, batch 1, sequence 512, for full fine-tuning, full + LoRA,
// offsite-tuning (l-k-r adapter on an emulator) and offsite + LoRA, all on the same model
// shape and machine. Each configuration runs in a fresh process so peak memory is its own.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "model/config.h"
#include "model/precision.h"

namespace ot {

struct EfficiencyOptions {
  ModelConfig config;          // the model shape (weights are random: speed does not depend on them)
  int64_t bottom = 2, top = 2, emulator_layers = 0;
  int64_t seq_len = 512, batch = 1;
  int64_t warmup_steps = 2, steps = 5;
  int64_t lora_rank = 4;
  double lora_alpha = 32.0, lora_dropout = 0.1;
  uint64_t seed = 0;
  c10::Device device = c10::Device(c10::kCPU);
  Precision precision = Precision::kFp32;  // autocast over fp32 weights; fp16 with loss scaling
  bool checkpoint_activations = false;
  // `batch` is the team's: under an MPI launcher each of the team's ranks takes batch / ranks
  // sequences and gradients are averaged as the trainer does (dist/fusion_buffer.h).
};

struct EfficiencyResult {
  std::string method;            // ft, ft_lora, ot, ot_lora
  double tokens_per_s = 0.0;      // the team's
  int64_t ranks = 1;              // data-parallel ranks that shared the batch
  double peak_memory_mib = 0.0;  // peak RSS of the process during training
  double peak_gpu_memory_mib = 0.0;  // CUDA caching allocator's peak (0 on the CPU)
  int64_t trainable_params = 0, total_params = 0;
  double step_seconds = 0.0;     // CUDA events on the GPU, the wall clock on the CPU
  double flops_per_token = 0.0;  // model FLOPs of a training token (model/flops.h)
  double mfu = 0.0;              // model FLOP utilisation (0: the device's peak is unknown)
  std::string device;            // "cpu" or the GPU's name
  // The memory the paper compares: the GPU's on a GPU, the process's resident set on a CPU.
  double compared_memory_mib() const { return peak_gpu_memory_mib > 0 ? peak_gpu_memory_mib : peak_memory_mib; }
  nlohmann::json to_json() const;
  static EfficiencyResult from_json(const nlohmann::json& j);
};

// Runs one method in this process: builds the model (or its bundle), sets the trainable
// part, and times AdamW steps of forward + backward + update on random tokens.
EfficiencyResult run_efficiency_method(const std::string& method, const EfficiencyOptions& o);

// What one efficiency measurement needs, as a parent process hands it to the child that runs
// it: `ot bench offsite --request FILE` reads it from a JSON file (efficiency_request_to_json;
// efficiency_request_from_json is its inverse).
struct EfficiencyRequest {
  std::string method;                 // ft, ft_lora, ot, ot_lora
  std::string shape = "opt-125m";     // a named shape (model/shapes.h) ...
  std::string config_path;            // ... or the config.json giving it (used when set)
  int64_t bottom = 2, top = 2;        // adapter blocks
  int64_t emulator_layers = 0;        // 0: 40% of the middle blocks (at least 1), as OPT-1.3B 2-8-2
  int64_t seq_len = 512, batch = 1;
  int64_t warmup_steps = 2, steps = 5;
  std::string device = "cpu", precision = "fp32";
  int64_t threads = 0;                // intra-op threads (0: LibTorch's default)
  bool checkpoint_activations = false;
  int64_t ranks = 1;                  // data-parallel ranks the child runs as (mpirun -np ranks)
};

nlohmann::json efficiency_request_to_json(const EfficiencyRequest& r);
// Throws ot::Error naming `source` and the key that is missing or of the wrong type.
EfficiencyRequest efficiency_request_from_json(const nlohmann::json& j, const std::string& source);

// The options a request measures with: the model shape read, device and precision parsed,
// the emulator depth resolved.
EfficiencyOptions efficiency_options_of(const EfficiencyRequest& r);

// run_efficiency_method for `r` in a fresh `ot bench offsite --request FILE` process (this
// executable), so that its peak memory is its own; with r.ranks > 1, a team of that many
// processes started by the MPI launcher ($OT_MPIRUN, default mpirun). Throws ot::Error when
// the child fails (exit code 137: most likely killed for memory).
EfficiencyResult run_efficiency_method_in_child(const EfficiencyRequest& r);

// The paper's figures (throughput, memory) for OPT-1.3B and GPT2-XL per method, to print
// the ratios side by side.
struct PaperEfficiency {
  std::string model, method;
  double throughput, memory;
};
const std::vector<PaperEfficiency>& paper_efficiency_table();

}  // namespace ot
