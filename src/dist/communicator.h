// dist/communicator.h: the collective operations data parallelism needs, behind one
// interface with one backend per engine (split as Horovod splits mpi_operations and
// nccl_operations):
//   LocalCommunicator  one rank; every operation is the identity (no MPI needed)
//   MpiCommunicator    dist/mpi_operations.h: CPU tensors over Open MPI
//   NcclCommunicator   dist/nccl_operations.h: CUDA tensors over NCCL (OT_WITH_NCCL builds)
// The gradient fusion buffers (dist/fusion_buffer.h) and the trainer speak only to this
// interface; which backend a run gets follows its device (dist/context.h).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace ot::dist {

// A collective started but maybe not finished; wait() returns once its result is in place.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  // Drives progress without blocking (MPI progresses only inside MPI calls); true when done.
  virtual bool test() { return false; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "mpi", "nccl"

  // In-place sum over ranks of a contiguous tensor on this backend's device.
  virtual std::unique_ptr<Work> start_all_reduce_sum(const at::Tensor& t) = 0;
  void all_reduce_sum(const at::Tensor& t) { start_all_reduce_sum(t)->wait(); }
  // In-place: every rank ends with root's values.
  virtual void broadcast(const at::Tensor& t, int root) = 0;
  // Host values (metrics, token counts, flags), reduced element-wise and returned.
  virtual std::vector<double> all_reduce_sum(const std::vector<double>& values) = 0;
  virtual double all_reduce_max(double value) = 0;
  virtual void barrier() = 0;
};

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<Work> start_all_reduce_sum(const at::Tensor&) override;
  void broadcast(const at::Tensor&, int) override {}
  std::vector<double> all_reduce_sum(const std::vector<double>& values) override { return values; }
  double all_reduce_max(double value) override { return value; }
  void barrier() override {}
};

// The rank's share [begin, end) of n items split into contiguous, near-equal parts (the
// first n % size ranks get one more): sharded evaluation uses it.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size);

}  // namespace ot::dist
