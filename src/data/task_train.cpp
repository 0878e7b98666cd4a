// data/task_train.cpp: see task_train.h.
#include "data/task_train.h"

#include <algorithm>

#include "util/error.h"

namespace ot {

TaskTrainSource::TaskTrainSource(const std::vector<TaskDoc>& docs, const Tokenizer& tok,
                                 const TaskTrainOptions& opts)
    : opts_(opts) {
  OT_REQUIRE(opts.block_size > 0, "task training: block_size must be positive, got ", opts.block_size);
  OT_REQUIRE(opts.pad_multiple > 0, "task training: pad_multiple must be positive, got ", opts.pad_multiple);
  examples_.reserve(docs.size());
  for (const TaskDoc& d : docs) {
    OT_REQUIRE(!d.train_target.empty(), "task ", d.task, " doc ", d.id,
               ": empty training target, expected the gold answer text");
    Example ex;
    if (opts.prefix_token) ex.ids.push_back(*opts.prefix_token);
    const auto ctx = tok.encode(d.train_context);
    const auto tgt = tok.encode(d.train_target);
    OT_REQUIRE(!tgt.empty(), "task ", d.task, " doc ", d.id, ": training target '", d.train_target,
               "' encodes to no tokens");
    ex.ids.insert(ex.ids.end(), ctx.begin(), ctx.end());
    ex.unscored = static_cast<int64_t>(ex.ids.size());
    ex.ids.insert(ex.ids.end(), tgt.begin(), tgt.end());
    if (static_cast<int64_t>(ex.ids.size()) > opts.block_size) {
      ex.ids.resize(static_cast<size_t>(opts.block_size));  // right truncation, like Offsite
      ++truncated_;
      if (ex.unscored >= opts.block_size) {
        ex.unscored = opts.block_size;
        ++without_target_;
      }
    }
    examples_.push_back(std::move(ex));
  }
}

Batch TaskTrainSource::batch(const std::vector<int64_t>& indices) const {
  OT_REQUIRE(!indices.empty(), "task training: empty batch");
  int64_t longest = 0;
  for (int64_t i : indices) {
    OT_REQUIRE(i >= 0 && i < size(), "task training: example ", i, " outside [0, ", size(), ")");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(examples_[static_cast<size_t>(i)].ids.size()));
  }
  const int64_t m = opts_.pad_multiple;
  const int64_t T = std::min(opts_.block_size, (longest + m - 1) / m * m);
  const int64_t B = static_cast<int64_t>(indices.size());
  auto input = at::full({B, T}, opts_.pad_id, at::kLong);  // (B, T)
  auto labels = at::full({B, T}, -100, at::kLong);         // (B, T)
  auto mask = at::zeros({B, T}, at::kLong);                // (B, T)
  auto in_a = input.accessor<int64_t, 2>();
  auto lab_a = labels.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  Batch b;
  bool padded = false;
  for (int64_t r = 0; r < B; ++r) {
    const Example& ex = examples_[static_cast<size_t>(indices[static_cast<size_t>(r)])];
    const int64_t n = static_cast<int64_t>(ex.ids.size());
    for (int64_t t = 0; t < n; ++t) {
      in_a[r][t] = ex.ids[static_cast<size_t>(t)];
      mask_a[r][t] = 1;
      if (t >= ex.unscored) lab_a[r][t] = ex.ids[static_cast<size_t>(t)];
    }
    padded = padded || n < T;
    b.tokens += n;
  }
  b.input_ids = input;
  b.labels = labels;
  if (padded) b.attention_mask = mask;
  return b;
}

}  // namespace ot
