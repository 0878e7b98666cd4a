// util/host_threads.h: the CPU's threads and memory as a training process wants them.
//   set_host_threads(n)       LibTorch's intra-op threads (n > 0; 0 keeps its default) and, where
//                             OpenBLAS runs its own thread pool, OpenBLAS's to match
//   keep_freed_host_memory()  large freed blocks stay in the process for the next step
#pragma once

#include <string>

namespace ot {

// How the BLAS under LibTorch threads, read from OpenBLAS itself when it is loaded.
struct BlasThreading {
  bool openblas = false;   // openblas_get_parallel found in the process
  int parallel = -1;       // OpenBLAS's build: 0 sequential, 1 its own pthreads pool, 2 OpenMP
  std::string config;      // openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen MAX_THREADS=64"
};
BlasThreading blas_threading();

// Sets LibTorch's thread count (n > 0; 0 keeps it) and returns the warning set_host_threads prints,
// or "" when there is none.
// OpenBLAS's pthreads build (Debian's libopenblas0-pthread, which libopenblas-dev pulls in and
// which then wins the libopenblas.so.0 alternative) keeps a pool of its own beside LibTorch's
// OpenMP threads: it is sized to LibTorch's count here, so one thread per MPI rank stays one, and
// with more than one thread the two pools compete for the cores (measured on a 2-core machine:
// the OPT-125m training step at 0.69x the OpenMP build's speed), which the warning says with the fix.
std::string match_blas_threads(int n);
// The same, printing the warning (once a process) on stderr as "ot: warning: ...".
void set_host_threads(int n);

// A training step frees and reallocates the same large tensors (logits, activations, gradients)
// every step. glibc serves blocks above its mmap threshold (at most 32 MiB by default) with fresh
// mappings and unmaps them on free, so every step faults each of their pages in again and the
// kernel zeroes it. This raises the mmap and trim thresholds so such blocks come from the heap and
// are reused. The process then keeps its peak footprint until it exits. Returns false and changes
// nothing where GLIBC_TUNABLES already sets either threshold (the user's choice stands) or
// OT_HOST_MEMORY=release asks for glibc's defaults; OT_HOST_MEMORY=keep is the default. Any other
// value of OT_HOST_MEMORY is an ot::Error naming it.
bool keep_freed_host_memory();

}  // namespace ot
