// eval/image_classification.cpp: see image_classification.h.
#include "eval/image_classification.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace ot {

namespace {

// The harness's mean_stderr of n values that are 0 or 1, k of them 1: the sample standard
// deviation sqrt(k (n - k) / (n (n - 1))) over sqrt(n); 0 for fewer than two values.
double binary_stderr(double k, double n) {
  if (n < 2) return 0.0;
  return std::sqrt(k * (n - k) / (n * (n - 1.0))) / std::sqrt(n);
}

}  // namespace

std::vector<TaskResult> evaluate_image_classification(VisionEncoder& model, const ImageDataset& data,
                                                      const ImageProcessorConfig& processor, const std::string& task,
                                                      int64_t batch_size, dist::Communicator& comm) {
  const std::string source = data.root.empty() ? task : data.root;
  OT_REQUIRE(model->has_classifier(), source, ": the model has no classifier to score (",
             arch_name(model->config().arch), " without class logits; a ViTForImageClassification has one)");
  OT_REQUIRE(data.size() > 0, source, ": the dataset has no images");
  OT_REQUIRE(batch_size > 0, "batch size: expected a positive number, got ", batch_size);
  const int64_t classes = model->config().num_labels;
  const int64_t top_label = data.labels.max().item<int64_t>();
  OT_REQUIRE(top_label < classes, source, ": label ", top_label, " is outside the model's ", classes,
             " classes (the classifier was trained for another label set)");

  torch::NoGradGuard no_grad;
  const auto [begin, end] = dist::shard_range(data.size(), comm.rank(), comm.size());
  const int64_t k = std::min<int64_t>(5, classes);
  double top1 = 0.0, top5 = 0.0;
  for (int64_t b = begin; b < end; b += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = b; i < std::min(end, b + batch_size); ++i) idx.push_back(i);
    ImageBatch batch = make_image_batch(data, idx, processor);
    model->check_pixels(batch.pixel_values, /*interpolate_positions=*/false, source);
    at::Tensor logits = model->forward(batch.pixel_values.to(model->device())).logits.to(torch::kCPU, torch::kFloat);
    at::Tensor labels = batch.labels.to(torch::kLong);
    at::Tensor best = std::get<1>(logits.topk(k, /*dim=*/1));  // (B, k), best first
    top1 += best.select(1, 0).eq(labels).sum().item<double>();
    top5 += best.eq(labels.unsqueeze(1)).any(1).sum().item<double>();
  }
  const std::vector<double> sums = comm.all_reduce_sum(std::vector<double>{top1, top5});
  const auto n = static_cast<double>(data.size());
  std::vector<TaskResult> rows;
  rows.push_back({task, 0, "acc", sums[0] / n, binary_stderr(sums[0], n), data.size()});
  if (classes > 5) rows.push_back({task, 0, "acc_top5", sums[1] / n, binary_stderr(sums[1], n), data.size()});
  return rows;
}

ClassificationScore classification_score(VisionEncoder& model, const BatchSource& source, int64_t batch_size,
                                         dist::Communicator& comm) {
  OT_REQUIRE(model->has_classifier(), "validation: the model has no classifier");
  OT_REQUIRE(batch_size > 0, "batch size: expected a positive number, got ", batch_size);
  torch::NoGradGuard no_grad;
  const auto [begin, end] = dist::shard_range(source.size(), comm.rank(), comm.size());
  double loss_sum = 0.0, correct = 0.0;
  for (int64_t b = begin; b < end; b += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = b; i < std::min(end, b + batch_size); ++i) idx.push_back(i);
    const Batch batch = source.batch(idx);
    const at::Tensor logits = model->forward(batch.pixel_values.to(model->device())).logits.to(torch::kCPU, torch::kFloat);
    const at::Tensor labels = batch.labels.to(torch::kLong);
    loss_sum += classification_loss(logits, labels).item<double>() * static_cast<double>(idx.size());
    correct += logits.argmax(1).eq(labels).sum().item<double>();
  }
  const std::vector<double> sums = comm.all_reduce_sum(std::vector<double>{loss_sum, correct});
  ClassificationScore s;
  s.n = source.size();
  if (s.n > 0) {
    s.loss = sums[0] / static_cast<double>(s.n);
    s.accuracy = sums[1] / static_cast<double>(s.n);
  }
  return s;
}

}  // namespace ot
