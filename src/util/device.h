// util/device.h: parsing of the --device and dtype options shared by every command
// ("cpu", "cuda", "cuda:1"; "fp32", "bf16", "fp16" and their long spellings).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <utility>

namespace ot {

// Throws ot::Error naming `option` when `text` is not a device this build can use. Plain
// "cuda" under a launcher means one GPU per rank: the launcher's local rank picks it.
c10::Device parse_device(const std::string& text, const std::string& option = "--device");

// The launcher's local rank of this process and the variable it came from:
// OMPI_COMM_WORLD_LOCAL_RANK (mpirun), SLURM_LOCALID (srun), MPI_LOCALRANKID (MPICH),
// LOCAL_RANK (torchrun-style launchers); none when started alone.
std::optional<std::pair<std::string, int>> local_rank_from_env();
// The CUDA device index of a rank: 0 alone or when exactly one GPU is visible (the
// scheduler bound one to the task, CUDA_VISIBLE_DEVICES), else its local rank, which must
// be below the number of visible GPUs (a rank without a GPU is an error, not a shared GPU).
int cuda_index_for_rank(const std::optional<std::pair<std::string, int>>& local_rank, int visible);

// fp32|float32|float, bf16|bfloat16, fp16|float16|half.
c10::ScalarType parse_dtype(const std::string& text, const std::string& option = "--dtype");

// Short name used in files and logs: fp32, bf16, fp16 (others: their c10 name).
std::string dtype_name(c10::ScalarType t);

// The safetensors spelling: F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL.
std::string safetensors_dtype_name(c10::ScalarType t);

}  // namespace ot
