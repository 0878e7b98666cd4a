// data/sampler.cpp: see sampler.h.
#include "data/sampler.h"

#include <random>

#include "util/error.h"

namespace ot {

EpochSampler::EpochSampler(const SamplerOptions& o) : o_(o) {
  OT_REQUIRE(o.num_examples > 0, "sampler: the dataset has no examples");
  OT_REQUIRE(o.batch_size > 0, "sampler: batch size must be positive, got ", o.batch_size);
  OT_REQUIRE(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size, "sampler: rank ", o.rank,
             " outside world of ", o.world_size);
}

int64_t EpochSampler::batches_per_epoch() const {
  const int64_t g = o_.batch_size * o_.world_size;
  const int64_t full = o_.num_examples / g, rest = o_.num_examples % g;
  // A final partial batch too small to give every rank an example is dropped: every rank
  // must take part in every step's collectives.
  return full + (!o_.drop_last && rest >= o_.world_size ? 1 : 0);
}

std::vector<int64_t> EpochSampler::permutation(int64_t epoch) const {
  if (epoch == cached_epoch_) return cached_;
  std::vector<int64_t> p(static_cast<size_t>(o_.num_examples));
  for (int64_t i = 0; i < o_.num_examples; ++i) p[static_cast<size_t>(i)] = i;
  if (o_.shuffle) {
    std::mt19937_64 rng(o_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    for (int64_t i = o_.num_examples - 1; i > 0; --i) {
      // Unbiased draw in [0, i] by rejection (std::uniform_int_distribution is not portable).
      const uint64_t range = static_cast<uint64_t>(i) + 1;
      const uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
      uint64_t r;
      do r = rng(); while (r >= limit);
      std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(r % range)]);
    }
  }
  cached_epoch_ = epoch;
  cached_ = p;
  return p;
}

std::vector<int64_t> EpochSampler::batch(int64_t epoch, int64_t b) const {
  OT_REQUIRE(b >= 0 && b < batches_per_epoch(), "sampler: batch ", b, " outside epoch of ", batches_per_epoch());
  const auto p = permutation(epoch);
  const int64_t g = o_.batch_size * o_.world_size;
  const int64_t begin = b * g, end = std::min(begin + g, o_.num_examples);
  const int64_t n = end - begin;
  // Contiguous shares: rank r gets [begin + lo_r, begin + hi_r).
  const int64_t base = n / o_.world_size, extra = n % o_.world_size;
  const int64_t lo = o_.rank * base + std::min<int64_t>(o_.rank, extra);
  const int64_t hi = lo + base + (o_.rank < extra ? 1 : 0);
  return std::vector<int64_t>(p.begin() + begin + lo, p.begin() + begin + hi);
}

}  // namespace ot
