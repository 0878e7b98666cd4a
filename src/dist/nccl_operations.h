// dist/nccl_operations.h: the NCCL backend of Communicator: CUDA tensors summed on the
// GPU. The NCCL unique id is made on the group's rank 0 and broadcast over MPI (MPI is the
// bootstrap, NCCL the data path); host values (metrics, flags) go over MPI.
// Collectives are enqueued on the stream LibTorch computes on (its current CUDA stream), so
// they are ordered with the backward pass and the optimizer step without host
// synchronisation. A team of one needs no MPI: pass no group.
// Built when CMake finds CUDA's runtime and NCCL (-DOT_WITH_NCCL=ON, the default); other
// builds keep the declaration and fail with a clear message.
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "dist/mpi_runtime.h"

namespace ot::dist {

bool built_with_nccl();

// `device_index`: the CUDA device this rank uses (e.g. its local rank); `group` null: a
// team of one (NCCL initialised and usable without MPI, e.g. on a single-GPU machine).
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiGroup> group, int device_index);

}  // namespace ot::dist
