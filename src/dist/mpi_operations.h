// dist/mpi_operations.h: the MPI backend of Communicator: CPU tensors (float32/64,
// bfloat16 and float16 through a float32 staging copy, int32/64), in-place non-blocking
// all-reduce (MPI_Iallreduce with MPI_IN_PLACE), broadcast, host-value reductions.
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "dist/mpi_runtime.h"

namespace ot::dist {

std::shared_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiGroup> group);

}  // namespace ot::dist
