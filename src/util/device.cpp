// util/device.cpp: see device.h.
#include "util/device.h"

#include <torch/cuda.h>

#include <cctype>
#include <cstdlib>

#include "util/error.h"

namespace ot {

std::optional<std::pair<std::string, int>> local_rank_from_env() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    OT_REQUIRE(*end == '\0' && r >= 0 && r < 1'000'000, "$", name, ": expected a local rank (a non-negative integer), got '",
               v, "'");
    return std::make_pair(std::string(name), static_cast<int>(r));
  }
  return std::nullopt;
}

int cuda_index_for_rank(const std::optional<std::pair<std::string, int>>& local_rank, int visible) {
  OT_REQUIRE(visible > 0, "--device cuda: no CUDA device is visible to this process",
             local_rank ? " (local rank " + std::to_string(local_rank->second) + ")" : std::string(),
             "; check CUDA_VISIBLE_DEVICES and the job's GPU request (e.g. --gpus-per-task)");
  if (!local_rank || visible == 1) return 0;  // one process, or one GPU bound to this task
  OT_REQUIRE(local_rank->second < visible, "--device cuda: this rank (", local_rank->first, "=", local_rank->second,
             ") has no GPU of its own: only ", visible, " are visible on this node; start at most ", visible,
             " ranks per node, or give each task one GPU (Slurm --gpus-per-task=1)");
  return local_rank->second;
}

c10::Device parse_device(const std::string& text, const std::string& option) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "cpu") return c10::Device(c10::kCPU);
  if (t == "cuda" || t.rfind("cuda:", 0) == 0) {
    OT_REQUIRE(torch::cuda::is_available(), option, ": '", text,
               "' requested but this build of LibTorch has no usable CUDA device; use --device cpu");
    // Plain "cuda": one GPU per rank, chosen by the launcher's local rank.
    int index = t == "cuda" ? cuda_index_for_rank(local_rank_from_env(), static_cast<int>(torch::cuda::device_count())) : 0;
    if (t.size() > 5) {
      std::string n = t.substr(5);
      bool digits = !n.empty() && n.size() < 4;
      for (char c : n) digits = digits && std::isdigit(static_cast<unsigned char>(c));
      OT_REQUIRE(digits, option, ": '", text, "' is not a device; expected cpu, cuda or cuda:N");
      index = std::stoi(n);
    }
    OT_REQUIRE(index < static_cast<int>(torch::cuda::device_count()), option, ": '", text,
               "' requested but only ", torch::cuda::device_count(), " CUDA device(s) are visible");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail(option, ": '", text, "' is not a device; expected cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& text, const std::string& option) {
  if (text == "fp32" || text == "float32" || text == "float") return c10::kFloat;
  if (text == "bf16" || text == "bfloat16") return c10::kBFloat16;
  if (text == "fp16" || text == "float16" || text == "half") return c10::kHalf;
  fail(option, ": '", text, "' is not a dtype; expected fp32, bf16 or fp16");
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "fp32";
    case c10::kBFloat16: return "bf16";
    case c10::kHalf: return "fp16";
    default: return c10::toString(t);
  }
}

std::string safetensors_dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "F32";
    case c10::kBFloat16: return "BF16";
    case c10::kHalf: return "F16";
    case c10::kDouble: return "F64";
    case c10::kLong: return "I64";
    case c10::kInt: return "I32";
    case c10::kShort: return "I16";
    case c10::kChar: return "I8";
    case c10::kByte: return "U8";
    case c10::kBool: return "BOOL";
    default: fail("safetensors: dtype ", c10::toString(t), " cannot be stored");
  }
}

}  // namespace ot
