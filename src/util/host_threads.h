// util/host_threads.h: the CPU's threads and memory as a training process wants them.
//   set_host_threads(n)       LibTorch's intra-op threads (n > 0; 0 keeps its default), and
//                             OpenBLAS's where it runs a thread pool of its own
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

// Sets LibTorch's thread count (n > 0; 0 keeps it). OpenBLAS's pthreads build (Debian's
// libopenblas0-pthread, which libopenblas-dev pulls in and which then wins the libopenblas.so.0
// alternative) keeps a thread pool of its own beside LibTorch's OpenMP threads, and the two stall
// each other on the same cores (measured on 2 cores: the OPT-125m training step at 0.3x the
// OpenMP build's speed). With that build the matrix products get the threads and LibTorch's own
// operations one (0.87x the OpenMP build's speed there), so one thread per MPI rank stays one.
// Returns a note saying so with the fix, or "" where there is nothing to say.
std::string match_blas_threads(int n);
// The same, printing the note (once a process) on stderr as "ot: warning: ...".
void set_host_threads(int n);
// The threads a matrix product runs on: OpenBLAS's own pool where it has one, else LibTorch's.
int blas_threads();

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
