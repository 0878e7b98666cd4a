// dist/mpi_impl.h: what MpiGroup holds (an MPI_Comm), for the backends in dist/ only.
#pragma once

#if OT_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings
#include <mpi.h>
#endif

#include <string>

#include "dist/mpi_runtime.h"
#include "util/error.h"

namespace ot::dist {

#if OT_WITH_MPI
// An MPI error code as an ot::Error naming the call (communicators use MPI_ERRORS_RETURN).
inline void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI: ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
}
#endif

struct MpiGroup::Impl {
#if OT_WITH_MPI
  MPI_Comm comm = MPI_COMM_NULL;
#endif
};

}  // namespace ot::dist
