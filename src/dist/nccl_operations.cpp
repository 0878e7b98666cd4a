// dist/nccl_operations.cpp: see nccl_operations.h.
#include "dist/nccl_operations.h"

#include "dist/mpi_operations.h"
#include "util/error.h"
#include "util/gpu.h"

#if OT_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#endif

namespace ot::dist {

bool built_with_nccl() { return OT_WITH_NCCL != 0; }

#if OT_WITH_NCCL

namespace {

void check_cuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) fail("CUDA: ", what, " failed: ", cudaGetErrorString(rc));
}

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) fail("NCCL: ", what, " failed: ", ncclGetErrorString(rc));
}

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    default: fail("NCCL backend: no all-reduce for dtype ", t);
  }
}

// Stream-ordered on the stream LibTorch computes on: the result is in place for every later
// kernel queued there (the optimizer step), without a host synchronisation.
class StreamOrderedWork final : public Work {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class NcclCommunicator final : public Communicator {
 public:
  // A team of one (no group, no MPI needed) creates its id itself.
  NcclCommunicator(std::shared_ptr<MpiGroup> group, int device) : device_(device) {
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id;
    if (!group) {
      host_ = std::make_shared<LocalCommunicator>();
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    } else {
      host_ = make_mpi_communicator(group);
      std::string bytes;
      if (group->rank() == 0) {
        check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
        bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
      }
      group->bcast_string(bytes, 0);
      OT_REQUIRE(bytes.size() == sizeof id, "NCCL: unique id of ", bytes.size(), " bytes received, expected ", sizeof id);
      std::memcpy(&id, bytes.data(), sizeof id);
      rank_ = group->rank();
      size_ = group->size();
    }
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> start_all_reduce_sum(const at::Tensor& t) override {
    check_tensor(t, "all-reduce");
    check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()),
                             ncclSum, comm_, stream()),
               "ncclAllReduce");
    return std::make_unique<StreamOrderedWork>();
  }

  void broadcast(const at::Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size(), ncclUint8,
                             root, comm_, stream()),
               "ncclBroadcast");
  }

  std::vector<double> all_reduce_sum(const std::vector<double>& v) override { return host_->all_reduce_sum(v); }
  double all_reduce_max(double v) override { return host_->all_reduce_max(v); }
  void barrier() override {
    check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    host_->barrier();
  }

 private:
  // LibTorch's current stream for this device; the legacy default stream where this build's
  // LibTorch has no CUDA (nothing could then compute on the device anyway).
  cudaStream_t stream() const {
    return gpu::built_with_cuda() ? static_cast<cudaStream_t>(gpu::current_stream(device_)) : cudaStreamLegacy;
  }
  void check_tensor(const at::Tensor& t, const char* op) const {
    OT_REQUIRE(t.defined() && t.is_cuda(), "NCCL ", op, ": the NCCL backend takes CUDA tensors");
    OT_REQUIRE(t.device().index() == device_, "NCCL ", op, ": tensor on cuda:", t.device().index(),
               " but this rank's communicator is on cuda:", device_);
    OT_REQUIRE(t.is_contiguous(), "NCCL ", op, ": tensor must be contiguous");
  }
  std::shared_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  int device_ = 0, rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiGroup> group, int device_index) {
  return std::make_shared<NcclCommunicator>(std::move(group), device_index);
}

#else

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiGroup>, int) {
  fail("this ot was built without NCCL: data parallelism on CUDA needs a build with CUDA and NCCL "
       "(-DOT_WITH_NCCL=ON, e.g. -DCUDAToolkit_ROOT=/usr/local/cuda)");
}

#endif

}  // namespace ot::dist
