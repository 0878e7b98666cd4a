// dist/fusion_buffer.h: gradient averaging across the ranks of a team in fused buckets.
// Small gradients are packed into flat buffers of up to bucket_bytes (one collective per
// bucket instead of one per tensor); buckets follow the parameters in reverse order, the
// order backward produces their gradients. With overlap on, a bucket's all-reduce starts as
// soon as the last of its gradients has been accumulated (a post-hook on each parameter's
// gradient accumulator), so communication runs while backward computes earlier layers.
//
//   GradientAllReducer r(comm, params, {bucket_bytes, overlap});
//   r.arm();              // before the backward of a step's last micro-batch
//   loss.backward();      // buckets launch as they fill
//   r.finish();           // launch the rest, wait, divide by the world size, write back
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "dist/communicator.h"

namespace ot::dist {

struct BucketOptions {
  int64_t bucket_bytes = 25 << 20;  // 25 MiB: PyTorch DDP's bucket_cap_mb (Horovod fuses up to 64 MiB)
  bool overlap = true;              // start buckets during backward
};

class GradientAllReducer {
 public:
  GradientAllReducer(Communicator& comm, std::vector<at::Tensor> params, BucketOptions o = {});
  ~GradientAllReducer();
  GradientAllReducer(const GradientAllReducer&) = delete;
  GradientAllReducer& operator=(const GradientAllReducer&) = delete;

  void arm();
  void finish();

  int64_t num_buckets() const;
  std::vector<int64_t> bucket_sizes() const;  // elements per bucket
  // Seconds spent inside finish() waiting for collectives (communication not hidden by backward).
  double exposed_comm_seconds() const;
  int64_t overlapped_buckets() const;  // buckets started during backward, summed over steps

  struct State;

 private:
  std::shared_ptr<State> s_;
};

}  // namespace ot::dist
