// dist/mpi_impl.h: what MpiGroup holds (an MPI_Comm), for the backends in dist/ only.
#pragma once

#if OT_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings
#include <mpi.h>
#endif

#include "dist/mpi_runtime.h"

namespace ot::dist {

struct MpiGroup::Impl {
#if OT_WITH_MPI
  MPI_Comm comm = MPI_COMM_NULL;
#endif
};

}  // namespace ot::dist
