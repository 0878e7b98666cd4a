// data/sampler.h: deterministic example order. Each epoch is a permutation drawn from
// (seed, epoch) with a portable Fisher-Yates over mt19937_64 (std::shuffle's algorithm is
// implementation-defined), so the order is the same on every machine and a resumed run
// sees exactly the batches it would have seen. With several ranks, every rank takes
// a disjoint, equally sized share of each global batch.
#pragma once

#include <cstdint>
#include <vector>

namespace ot {

struct SamplerOptions {
  int64_t num_examples = 0;
  int64_t batch_size = 1;     // per rank
  bool shuffle = true;
  bool drop_last = false;     // drop a final partial global batch
  uint64_t seed = 42;
  int rank = 0, world_size = 1;
};

class EpochSampler {
 public:
  explicit EpochSampler(const SamplerOptions& o);
  // Global batches per epoch (each made of world_size * batch_size examples, the last
  // possibly smaller unless drop_last; a last batch with fewer examples than ranks is
  // always dropped, so every rank has a share of every batch).
  int64_t batches_per_epoch() const;
  // This rank's indices of global batch `b` in `epoch`. In a final partial batch, ranks
  // split what is there as evenly as possible.
  std::vector<int64_t> batch(int64_t epoch, int64_t b) const;
  std::vector<int64_t> permutation(int64_t epoch) const;

 private:
  SamplerOptions o_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_;
};

}  // namespace ot
