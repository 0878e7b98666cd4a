// dist/fusion_buffer.cpp: see fusion_buffer.h.
#include "dist/fusion_buffer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>

#include "util/error.h"

namespace ot::dist {

struct Bucket {
  std::vector<size_t> members;  // indices into params
  int64_t numel = 0;
  at::Tensor flat;              // (numel,) on the members' device and dtype
  size_t ready = 0;             // members whose gradient is accumulated this step
  std::unique_ptr<Work> work;   // the running all-reduce, if launched
};

struct GradientAllReducer::State {
  Communicator* comm = nullptr;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucket_of;  // param index -> bucket
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: they carry the hooks
  std::vector<uintptr_t> hook_keys;
  bool armed = false, alive = true;
  double exposed_s = 0.0;
  int64_t overlapped = 0;

  void pack_and_launch(Bucket& b) {
    int64_t off = 0;
    for (size_t i : b.members) {
      at::Tensor& p = params[i];
      const int64_t n = p.numel();
      if (p.grad().defined()) b.flat.narrow(0, off, n).copy_(p.grad().reshape({-1}));
      else b.flat.narrow(0, off, n).zero_();  // a parameter unused by this step's graph
      off += n;
    }
    b.work = comm->start_all_reduce_sum(b.flat);
  }

  void on_ready(size_t param_index) {
    if (!armed) return;
    Bucket& b = buckets[bucket_of[param_index]];
    if (b.work) return;
    if (++b.ready == b.members.size()) {
      pack_and_launch(b);
      ++overlapped;
    }
    for (Bucket& o : buckets)  // MPI progresses only inside MPI calls
      if (o.work) o.work->test();
  }
};

namespace {

// Runs after AccumulateGrad has added this micro-batch's gradient into param.grad().
class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::weak_ptr<GradientAllReducer::State> s, size_t i) : s_(std::move(s)), i_(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto s = s_.lock(); s && s->alive) s->on_ready(i_);
    return outputs;
  }

 private:
  std::weak_ptr<GradientAllReducer::State> s_;
  size_t i_;
};

}  // namespace

GradientAllReducer::GradientAllReducer(Communicator& comm, std::vector<at::Tensor> params, BucketOptions o)
    : s_(std::make_shared<State>()) {
  OT_REQUIRE(o.bucket_bytes > 0, "gradient buckets: size must be positive, got ", o.bucket_bytes, " bytes");
  s_->comm = &comm;
  s_->params = std::move(params);
  s_->bucket_of.assign(s_->params.size(), 0);
  // Reverse order: backward produces the last layers' gradients first.
  for (size_t k = s_->params.size(); k-- > 0;) {
    const at::Tensor& p = s_->params[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool fresh = s_->buckets.empty();
    if (!fresh) {
      const Bucket& last = s_->buckets.back();
      const at::Tensor& q = s_->params[last.members.front()];
      const int64_t last_bytes = last.numel * static_cast<int64_t>(q.element_size());
      fresh = q.scalar_type() != p.scalar_type() || q.device() != p.device() || last_bytes + bytes > o.bucket_bytes;
    }
    if (fresh) s_->buckets.emplace_back();
    Bucket& b = s_->buckets.back();
    b.members.push_back(k);
    b.numel += p.numel();
    s_->bucket_of[k] = s_->buckets.size() - 1;
  }
  for (Bucket& b : s_->buckets) b.flat = at::empty({b.numel}, s_->params[b.members.front()].options());
  if (o.overlap && comm.size() > 1) {
    for (size_t i = 0; i < s_->params.size(); ++i) {
      OT_REQUIRE(s_->params[i].requires_grad() && s_->params[i].is_leaf(),
                 "gradient buckets: parameter ", i, " is not a trainable leaf tensor");
      auto acc = torch::autograd::impl::grad_accumulator(s_->params[i]);
      s_->hook_keys.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(s_, i)));
      s_->accumulators.push_back(std::move(acc));
    }
  }
}

GradientAllReducer::~GradientAllReducer() {
  s_->alive = false;
  for (size_t i = 0; i < s_->accumulators.size(); ++i) s_->accumulators[i]->del_post_hook(s_->hook_keys[i]);
  for (Bucket& b : s_->buckets)
    if (b.work) b.work->wait();
}

void GradientAllReducer::arm() {
  for (Bucket& b : s_->buckets) {
    b.ready = 0;
    b.work.reset();
  }
  s_->armed = true;
}

void GradientAllReducer::finish() {
  s_->armed = false;
  if (s_->comm->size() <= 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : s_->buckets)
    if (!b.work) s_->pack_and_launch(b);
  const double inv = 1.0 / double(s_->comm->size());
  for (Bucket& b : s_->buckets) {
    b.work->wait();
    b.work.reset();
    b.flat.mul_(inv);
    int64_t off = 0;
    for (size_t i : b.members) {
      at::Tensor& p = s_->params[i];
      const int64_t n = p.numel();
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      p.mutable_grad().copy_(b.flat.narrow(0, off, n).view(p.sizes()));
      off += n;
    }
  }
  s_->exposed_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t GradientAllReducer::num_buckets() const { return static_cast<int64_t>(s_->buckets.size()); }

std::vector<int64_t> GradientAllReducer::bucket_sizes() const {
  std::vector<int64_t> v;
  for (const Bucket& b : s_->buckets) v.push_back(b.numel);
  return v;
}

double GradientAllReducer::exposed_comm_seconds() const { return s_->exposed_s; }
int64_t GradientAllReducer::overlapped_buckets() const { return s_->overlapped; }

}  // namespace ot::dist
