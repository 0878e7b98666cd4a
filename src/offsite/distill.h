// offsite/distill.h: emulator distillation (the paper's run_clm.py with a teacher). Only
// the emulator blocks of a bundle train; the frozen original middle blocks of the full
// model are the teacher, run on the same input (the output of the bottom adapter).
//   kd   = mean(((T - S) / rms(T))^2), rms(T) = sqrt(mean(T^2)) over the whole tensor
//   loss = lm_weight * LM + kd_weight * kd            (LM only when kd_weight == 0)
// T, S: (B, T, C) outputs of the teacher's last middle block and the emulator's last block.
// Layer-wise KD (FedBiOT) matches every emulator block instead: kd = mean over the emulator's
// blocks j of kd(T_target(j), S_j), where target(j) is the original block whose output the
// next kept block reads (the one before the next block's origin; the last middle block for
// the last), or, when the emulator keeps the middle's depth (repeat), the block at its place.
// Decoders take token batches; vision encoders take image batches and distil by feature KD
// alone (lm_weight 0, kd_weight 1, as the paper's vision runs), having no language loss.
#pragma once

#include <memory>

#include "data/batch.h"
#include "model/block_model.h"
#include "offsite/emulator.h"
#include "train/trainer.h"

namespace ot {

struct DistillOptions {
  double lm_weight = 1.0;
  double kd_weight = 30.0;
  bool layerwise = false;  // match every emulator block to its teacher block (FedBiOT)
};

// Normalised MSE of the paper: mean(((teacher - student) / rms(teacher))^2).
at::Tensor kd_loss(const at::Tensor& teacher, const at::Tensor& student);

class Distiller {
 public:
  // `bundle` and `teacher` share the architecture (both decoders or both encoders); `layout`
  // maps the bundle's blocks.
  Distiller(std::shared_ptr<BlockModelImpl> bundle, std::shared_ptr<BlockModelImpl> teacher, OffsiteLayout layout,
            DistillOptions o);

  // Emulator block parameters (trainable), named by their bundle parameter names. Also
  // freezes everything else in the bundle and the whole teacher.
  NamedTensors trainable();
  // Loss of one batch; fills extra["kd"] and, for a decoder with lm_weight > 0, extra["lm"].
  at::Tensor loss(const Batch& batch, Metrics& extra);
  // The KD loss of one batch without gradients, summed over its examples (evaluation:
  // the mean over a held-out set is sum / examples). Always the output KD, so that emulators
  // distilled either way are selected and compared on the same measure.
  double kd_sum(const Batch& batch);
  // The original block each emulator block is matched to by layer-wise KD, in bundle order.
  const std::vector<int64_t>& layerwise_targets() const { return targets_; }

 private:
  struct Middle {
    at::Tensor input, student;          // the bottom adapter's output; the emulator's
    std::vector<at::Tensor> per_block;  // each emulator block's output (student is the last)
  };
  Middle run_to_emulator_output(const Batch& b, AttentionContext& ctx);
  // Each middle block's output from the first middle block on, or only the last (T): the
  // others are kept only for layer-wise KD, which needs them.
  std::vector<at::Tensor> teacher_outputs(const at::Tensor& input, const AttentionContext& ctx, bool every_block);

  std::shared_ptr<BlockModelImpl> bundle_, teacher_;
  OffsiteLayout layout_;
  DistillOptions o_;
  int64_t first_emulator_ = 0, end_emulator_ = 0;  // bundle positions [first, end)
  std::vector<int64_t> targets_;                    // layer-wise KD: original block per emulator block
};

}  // namespace ot
