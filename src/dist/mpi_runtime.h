// dist/mpi_runtime.h: MPI as launcher and bootstrap. Detects whether an MPI launcher
// (mpirun/mpiexec, or srun --mpi=pmix) started this process, initialises MPI once
// (asking for MPI_THREAD_MULTIPLE, which the sweep queue's server thread needs) and
// finalises it at exit, and wraps MPI communicators as MpiGroup: rank, size, split into
// teams, and the small point-to-point messages of the sweep queue.
// Builds without MPI (OT_WITH_MPI off) keep the interface: launched_by_mpi() may still
// say yes, and init_mpi() then fails with a clear message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ot::dist {

bool built_with_mpi();
// True when the environment shows an MPI launcher: OMPI_COMM_WORLD_SIZE (Open MPI's
// mpirun), PMIX_RANK (srun --mpi=pmix, PRRTE) or PMI_RANK (MPICH, srun --mpi=pmi2).
bool launched_by_mpi();

// MPI_Init_thread once; MPI_Finalize runs at process exit. Throws ot::Error without MPI.
void init_mpi();
bool mpi_initialized();
bool mpi_thread_multiple();  // the launcher's MPI granted MPI_THREAD_MULTIPLE

// Ends every rank of the job (a rank that cannot go on must not leave the others waiting).
[[noreturn]] void abort_mpi(int code);

// An owned MPI communicator (freed on destruction).
class MpiGroup {
 public:
  struct Impl;
  explicit MpiGroup(std::unique_ptr<Impl> impl);
  ~MpiGroup();
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  // A duplicate of MPI_COMM_WORLD (init_mpi() must have run).
  static std::shared_ptr<MpiGroup> world();

  int rank() const;
  int size() const;
  // Ranks with the same colour form one group, ordered by key (MPI_Comm_split).
  std::shared_ptr<MpiGroup> split(int color, int key) const;
  std::shared_ptr<MpiGroup> dup() const;

  // Small integer messages (the sweep queue). recv_ints: source -1 = any; `from` gets the sender.
  // recv_ints and idle_barrier wait politely (poll, then sleep a millisecond or more): Open
  // MPI's blocking calls spin a core, which a waiting queue server or a team that finished
  // early would take from the ranks still training.
  void send_ints(const std::vector<int64_t>& values, int dest, int tag) const;
  std::vector<int64_t> recv_ints(int source, int tag, int* from = nullptr) const;
  void bcast_ints(std::vector<int64_t>& values, int root) const;
  void bcast_string(std::string& s, int root) const;
  void barrier() const;
  void idle_barrier() const;
  // A barrier that gives up: true once every rank has arrived, false after `seconds` without
  // them (the request is then abandoned; the caller ends the job).
  bool arrive_within(double seconds) const;

  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ot::dist
