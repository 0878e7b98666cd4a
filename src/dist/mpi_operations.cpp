// dist/mpi_operations.cpp: see mpi_operations.h.
#include "dist/mpi_operations.h"

#include "dist/mpi_impl.h"
#include "util/error.h"

namespace ot::dist {

#if OT_WITH_MPI

namespace {

MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    default: fail("MPI backend: no all-reduce for dtype ", t);
  }
}

bool needs_staging(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

void check_tensor(const at::Tensor& t, const char* op) {
  OT_REQUIRE(t.defined(), "MPI ", op, ": undefined tensor");
  OT_REQUIRE(t.device().is_cpu(), "MPI ", op, ": the MPI backend takes CPU tensors, got one on ", t.device(),
             " (CUDA tensors go through NCCL: build with -DOT_WITH_NCCL=ON)");
  OT_REQUIRE(t.is_contiguous(), "MPI ", op, ": tensor must be contiguous");
}

class MpiWork final : public Work {
 public:
  MpiWork(MPI_Request req, at::Tensor target, at::Tensor staged)
      : req_(req), target_(std::move(target)), staged_(std::move(staged)) {}
  ~MpiWork() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    check_mpi(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait (all-reduce)");
    finish();
  }
  bool test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check_mpi(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), "MPI_Test (all-reduce)");
    if (done) finish();
    return done != 0;
  }

 private:
  void finish() {
    if (staged_.defined()) {  // half precision summed in float32, written back once
      target_.copy_(staged_);
      staged_ = at::Tensor();
    }
  }
  MPI_Request req_;
  at::Tensor target_, staged_;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(std::shared_ptr<MpiGroup> g) : group_(std::move(g)) {}
  int rank() const override { return group_->rank(); }
  int size() const override { return group_->size(); }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> start_all_reduce_sum(const at::Tensor& t) override {
    check_tensor(t, "all-reduce");
    at::Tensor buf = t, staged;
    if (needs_staging(t.scalar_type())) buf = staged = t.to(at::kFloat);
    MPI_Request req;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, buf.data_ptr(), static_cast<int>(buf.numel()), mpi_type(buf.scalar_type()),
                         MPI_SUM, comm(), &req),
          "MPI_Iallreduce");
    return std::make_unique<MpiWork>(req, t, staged);
  }

  void broadcast(const at::Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    // Bytes: any dtype, bit-exact.
    const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
    OT_REQUIRE(n < (int64_t(1) << 31), "MPI broadcast: tensor of ", n, " bytes is too large for one message");
    check_mpi(MPI_Bcast(t.data_ptr(), static_cast<int>(n), MPI_BYTE, root, comm()), "MPI_Bcast");
  }

  std::vector<double> all_reduce_sum(const std::vector<double>& values) override {
    std::vector<double> out(values.size());
    check_mpi(MPI_Allreduce(values.data(), out.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm()),
          "MPI_Allreduce");
    return out;
  }

  double all_reduce_max(double value) override {
    double out = 0;
    check_mpi(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, comm()), "MPI_Allreduce");
    return out;
  }

  void barrier() override { check_mpi(MPI_Barrier(comm()), "MPI_Barrier"); }

 private:
  MPI_Comm comm() const { return group_->impl().comm; }
  std::shared_ptr<MpiGroup> group_;
};

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiGroup> group) {
  OT_REQUIRE(group != nullptr, "MPI communicator: no group");
  return std::make_shared<MpiCommunicator>(std::move(group));
}

#else

std::shared_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiGroup>) {
  fail("this ot was built without MPI (configure with -DOT_WITH_MPI=ON)");
}

#endif

}  // namespace ot::dist
