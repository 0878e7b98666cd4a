// eval/sharding.cpp: batches of items split over ranks (see sharding.h).
#include "eval/sharding.h"

#include <algorithm>
#include <tuple>

#include "util/error.h"

namespace ot {

BatchShards::BatchShards(int64_t n_items, int64_t batch_size, dist::Communicator* comm)
    : n_items_(n_items), batch_size_(batch_size) {
  OT_REQUIRE(batch_size >= 1, "batch size must be at least 1, got ", batch_size);
  OT_REQUIRE(n_items >= 0, "cannot split ", n_items, " items into batches");
  n_batches_ = (n_items + batch_size - 1) / batch_size;
  end_batch_ = n_batches_;
  if (comm != nullptr && comm->size() > 1) {
    comm_ = comm;
    std::tie(first_batch_, end_batch_) = dist::shard_range(n_batches_, comm->rank(), comm->size());
  }
}

std::pair<int64_t, int64_t> BatchShards::items_of(int64_t batch) const {
  const int64_t begin = batch * batch_size_;
  return {begin, std::min(n_items_, begin + batch_size_)};
}

std::pair<int64_t, int64_t> BatchShards::own_items() const {
  const int64_t begin = std::min(n_items_, first_batch_ * batch_size_);
  return {begin, std::max(begin, std::min(n_items_, end_batch_ * batch_size_))};
}

std::vector<double> BatchShards::sum_over_ranks(const std::vector<double>& values) const {
  return comm_ != nullptr ? comm_->all_reduce_sum(values) : values;
}

}  // namespace ot
