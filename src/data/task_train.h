// data/task_train.h: TaskTrainSource, the BatchSource of Offsite-Tuning downstream-task
// training examples (LM_EVAL.md section 4): context and target tokenized SEPARATELY and
// concatenated, an optional prefix id first (OPT's tokenizer puts "</s>" = 2 there), no EOS,
// loss on the target tokens only, truncation on the right at block_size.
//
// Padding differs from the original on purpose: Offsite pads every example to one global
// length ((longest // 8 + 1) * 8); here each batch is padded to its own longest example
// rounded UP to a multiple of `pad_multiple` (capped at block_size). Pads carry label -100
// and attention_mask 0 and sit on the right, so a causal model's loss is the same.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "data/batch.h"
#include "data/task.h"
#include "tokenizer/tokenizer.h"

namespace ot {

struct TaskTrainOptions {
  int64_t block_size = 1024;            // longest sequence; longer ones are cut on the right
  std::optional<int64_t> prefix_token;  // e.g. 2 for OPT; none for GPT-2
  int64_t pad_id = 0;                   // GPT-2 in Offsite: 50256 (its BOS/EOS)
  int64_t pad_multiple = 8;
};

class TaskTrainSource : public BatchSource {
 public:
  // Tokenizes every doc's train_context and train_target once. Throws ot::Error naming the
  // doc id when a doc has no training target.
  TaskTrainSource(const std::vector<TaskDoc>& docs, const Tokenizer& tok, const TaskTrainOptions& opts);

  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }
  // input_ids/labels/attention_mask of shape (B, T), T = max length in the batch rounded
  // up to pad_multiple and capped at block_size. attention_mask is undefined when no row
  // of the batch is padded.
  Batch batch(const std::vector<int64_t>& indices) const override;

  // One example after truncation: ids and the number of leading positions without loss
  // (prefix + context).
  const std::vector<int64_t>& ids(int64_t i) const { return examples_.at(static_cast<size_t>(i)).ids; }
  int64_t unscored_prefix(int64_t i) const { return examples_.at(static_cast<size_t>(i)).unscored; }
  // Examples cut at block_size, and those of them that lost every target token (their
  // loss is undefined; the trainer must not count them).
  int64_t truncated() const { return truncated_; }
  int64_t without_target() const { return without_target_; }
  const TaskTrainOptions& options() const { return opts_; }

 private:
  struct Example {
    std::vector<int64_t> ids;
    int64_t unscored = 0;
  };
  std::vector<Example> examples_;
  TaskTrainOptions opts_;
  int64_t truncated_ = 0, without_target_ = 0;
};

}  // namespace ot
