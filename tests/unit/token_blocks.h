// tests/unit/token_blocks.h: a BatchSource of fixed random token blocks (input_ids =
// labels) for training-loop tests: deterministic for a seed, no files needed.
#pragma once

#include <torch/torch.h>

#include "data/batch.h"

namespace ot::test {

class TokenBlocks : public BatchSource {
 public:
  TokenBlocks(int64_t n, int64_t T, int64_t vocab, uint64_t seed) {
    torch::manual_seed(seed);
    data_ = torch::randint(0, vocab, {n, T}, torch::kLong);  // (n, T)
  }
  int64_t size() const override { return data_.size(0); }
  Batch batch(const std::vector<int64_t>& idx) const override {
    Batch b;
    b.input_ids = data_.index_select(0, torch::tensor(idx, torch::kLong));
    b.labels = b.input_ids;
    b.tokens = b.input_ids.numel();
    return b;
  }

 private:
  at::Tensor data_;
};

}  // namespace ot::test
