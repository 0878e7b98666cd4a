// eval/sharding.h: how evaluation splits its work over the ranks of a communicator. The items
// (blocks, requests, examples) are cut into batches of a fixed size in their given order; each
// rank takes a contiguous run of whole batches (dist::shard_range: near-equal, the first ranks
// one more) and per-rank sums are then added up over the ranks. Every batch is the batch a
// single process would form, so per-batch results are the same bit for bit.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace ot {

class BatchShards {
 public:
  // `comm` null or of one rank: this process takes every batch.
  BatchShards(int64_t n_items, int64_t batch_size, dist::Communicator* comm);

  int64_t num_items() const { return n_items_; }
  int64_t num_batches() const { return n_batches_; }  // over every rank
  // This rank's batches [first_batch, end_batch).
  int64_t first_batch() const { return first_batch_; }
  int64_t end_batch() const { return end_batch_; }
  // Items [begin, end) of batch `batch` (of any rank).
  std::pair<int64_t, int64_t> items_of(int64_t batch) const;
  // Items [begin, end) of this rank's batches.
  std::pair<int64_t, int64_t> own_items() const;
  // More than one rank shares the work (the sums must be reduced).
  bool sharded() const { return comm_ != nullptr; }

  // Calls fn(batch, begin, end) for each of this rank's batches, in order.
  template <class Fn>
  void for_each_own_batch(Fn&& fn) const {
    for (int64_t b = first_batch_; b < end_batch_; ++b) {
      const auto [begin, end] = items_of(b);
      fn(b, begin, end);
    }
  }

  // Element-wise sum of every rank's `values` (the same on every rank); `values` unchanged
  // when not sharded. A collective: every rank calls it.
  std::vector<double> sum_over_ranks(const std::vector<double>& values) const;

 private:
  int64_t n_items_ = 0, batch_size_ = 1, n_batches_ = 0;
  int64_t first_batch_ = 0, end_batch_ = 0;
  dist::Communicator* comm_ = nullptr;  // null unless more than one rank
};

}  // namespace ot
