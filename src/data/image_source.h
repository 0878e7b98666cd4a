// data/image_source.h: ImageClassificationSource, the BatchSource of an image-classification
// dataset for training and validation: pixel_values preprocessed as the checkpoint's image
// processor says (data/image_processor.h) and class ids as labels, over a subset of the
// dataset's examples. A training source augments (random resized crop + flip drawn from
// (seed, epoch, example index)); batch() never does, so validation sees the processor's
// images alone. split_image_validation holds out a seeded share of a train split, as HF's
// run_image_classification does with train_val_split.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "data/batch.h"
#include "data/image_datasets.h"
#include "data/image_processor.h"

namespace ot {

struct ImageSourceOptions {
  bool augment = false;         // training_batch augments (batch() never does)
  AugmentOptions augmentation;
  uint64_t seed = 0;            // augmentation draws come from (seed, epoch, example index)
  int64_t tokens_per_image = 1; // the encoder's sequence length (patches + class token), for throughput
};

class ImageClassificationSource : public BatchSource {
 public:
  // `examples`: indices into `data` (empty: all of them).
  ImageClassificationSource(std::shared_ptr<const ImageDataset> data, std::vector<int64_t> examples,
                            ImageProcessorConfig processor, ImageSourceOptions opts);

  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }
  Batch batch(const std::vector<int64_t>& indices) const override;
  Batch training_batch(const std::vector<int64_t>& indices, int64_t epoch) const override;
  const ImageDataset& dataset() const { return *data_; }

 private:
  Batch assemble(const std::vector<int64_t>& indices, bool augment, int64_t epoch) const;

  std::shared_ptr<const ImageDataset> data_;
  std::vector<int64_t> examples_;
  ImageProcessorConfig processor_;
  ImageSourceOptions o_;
};

// A train split's examples in two: `percent` of them (rounded as split_validation rounds,
// data/tasks.h) drawn by a seeded permutation for validation, the rest for training, each
// in dataset order. Image folders list their examples class by class, so taking the first
// ones, as the text split does, would validate on one class.
struct ImageSplit {
  std::vector<int64_t> train, validation;
};
ImageSplit split_image_validation(int64_t num_examples, int percent, uint64_t seed);

}  // namespace ot
