// data/image_source.cpp: see image_source.h.
#include "data/image_source.h"

#include <algorithm>
#include <numeric>

#include "data/sampler.h"
#include "data/tasks.h"
#include "util/error.h"

namespace ot {

ImageClassificationSource::ImageClassificationSource(std::shared_ptr<const ImageDataset> data,
                                                     std::vector<int64_t> examples, ImageProcessorConfig processor,
                                                     ImageSourceOptions opts)
    : data_(std::move(data)), examples_(std::move(examples)), processor_(std::move(processor)), o_(opts) {
  if (examples_.empty()) {
    examples_.resize(static_cast<size_t>(data_->size()));
    std::iota(examples_.begin(), examples_.end(), int64_t{0});
  }
  for (int64_t i : examples_)
    OT_REQUIRE(i >= 0 && i < data_->size(), data_->root, ": example ", i, " out of range (", data_->size(), " examples)");
}

Batch ImageClassificationSource::assemble(const std::vector<int64_t>& indices, bool augment, int64_t epoch) const {
  std::vector<int64_t> rows;
  rows.reserve(indices.size());
  for (int64_t i : indices) {
    OT_REQUIRE(i >= 0 && i < size(), "image batch: index ", i, " out of range (", size(), " examples)");
    rows.push_back(examples_[static_cast<size_t>(i)]);
  }
  ImageBatchOptions bo;
  bo.train = augment;
  bo.augment = o_.augmentation;
  bo.seed = o_.seed;
  bo.epoch = epoch;
  ImageBatch ib = make_image_batch(*data_, rows, processor_, bo);
  Batch b;
  b.pixel_values = std::move(ib.pixel_values);
  b.labels = std::move(ib.labels);
  b.tokens = static_cast<int64_t>(rows.size()) * o_.tokens_per_image;
  return b;
}

Batch ImageClassificationSource::batch(const std::vector<int64_t>& indices) const {
  return assemble(indices, false, 0);
}

Batch ImageClassificationSource::training_batch(const std::vector<int64_t>& indices, int64_t epoch) const {
  return assemble(indices, o_.augment, epoch);
}

ImageSplit split_image_validation(int64_t num_examples, int percent, uint64_t seed) {
  const int64_t k = validation_split_size(num_examples, percent);
  SamplerOptions so;
  so.num_examples = num_examples;
  so.seed = seed;
  const std::vector<int64_t> order = EpochSampler(so).permutation(0);
  ImageSplit s;
  s.validation.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
  s.train.assign(order.begin() + static_cast<std::ptrdiff_t>(k), order.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

}  // namespace ot
