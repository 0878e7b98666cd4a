// data/batch.h: what training and evaluation loops consume. A BatchSource is a fixed,
// indexable set of examples that can assemble any subset into one batch (token sequences,
// padded, or images); the sampler (data/sampler.h) decides which indices go together.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace ot {

struct Batch {
  at::Tensor input_ids;       // (B, T) int64
  at::Tensor attention_mask;  // (B, T) int64, 1 = real token (undefined: no padding)
  at::Tensor labels;          // (B, T) int64, -100 = not scored; images: (B) class ids
  at::Tensor pixel_values;    // images only: (B, 3, H, W) float32, preprocessed
  int64_t tokens = 0;         // real (unpadded) tokens, for throughput; images: B * (patches + 1)
};

// The batch on `device`. For a CUDA device the host tensors go through pinned (page-locked)
// memory and are copied without blocking the host, so the copy overlaps the previous
// step's kernels; on the CPU the batch is returned as it is.
Batch to_device(const Batch& b, const c10::Device& device);

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;
  virtual Batch batch(const std::vector<int64_t>& indices) const = 0;
  // The batch a training loop takes in `epoch`: the same as batch() unless the source draws
  // per-epoch randomness (image augmentation).
  virtual Batch training_batch(const std::vector<int64_t>& indices, int64_t /*epoch*/) const { return batch(indices); }
};

}  // namespace ot
