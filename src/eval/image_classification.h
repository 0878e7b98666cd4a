// eval/image_classification.h: a classifying vision encoder (ViTForImageClassification and
// any encoder with a classifier) scored on an image dataset: top-1 and top-5 accuracy, each
// the mean over images with the harness's standard error (sample std / sqrt(n)), as the
// paper's Table 3 reports accuracy. Images are preprocessed as the checkpoint's image
// processor says (data/image_processor.h), never augmented. The images are split over the
// ranks of `comm`; every rank returns the same results.
#pragma once

#include <string>
#include <vector>

#include "data/batch.h"
#include "data/image_datasets.h"
#include "data/image_processor.h"
#include "dist/communicator.h"
#include "eval/task_result.h"
#include "model/vision_encoder.h"

namespace ot {

struct ClassificationScore {
  double loss = 0.0;      // mean cross entropy
  double accuracy = 0.0;  // top-1
  int64_t n = 0;
};

// Mean loss and top-1 accuracy of `model` over every example of `source` (its batch(), never
// augmented: data/image_source.h), the examples split over the ranks of `comm`; every rank
// returns the same score. For validation during training.
ClassificationScore classification_score(VisionEncoder& model, const BatchSource& source, int64_t batch_size,
                                         dist::Communicator& comm);

// Rows `acc` (top-1) and, for more than 5 classes, `acc_top5`, both in [0, 1], task `task`.
// The model must have a classifier with at least as many classes as the dataset's labels
// reach; anything else is an ot::Error naming the dataset.
std::vector<TaskResult> evaluate_image_classification(VisionEncoder& model, const ImageDataset& data,
                                                      const ImageProcessorConfig& processor, const std::string& task,
                                                      int64_t batch_size, dist::Communicator& comm);

}  // namespace ot
