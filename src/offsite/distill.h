// offsite/distill.h: emulator distillation (the paper's run_clm.py with a teacher). Only
// the emulator blocks of a bundle train; the frozen original middle blocks of the full
// model are the teacher, run on the same input (the output of the bottom adapter).
//   kd   = mean(((T - S) / rms(T))^2), rms(T) = sqrt(mean(T^2)) over the whole tensor
//   loss = lm_weight * LM + kd_weight * kd            (LM only when kd_weight == 0)
// T, S: (B, T, C) outputs of the teacher's last middle block and the emulator's last block.
#pragma once

#include "data/batch.h"
#include "model/decoder_lm.h"
#include "offsite/emulator.h"
#include "train/trainer.h"

namespace ot {

struct DistillOptions {
  double lm_weight = 1.0;
  double kd_weight = 30.0;
};

// Normalised MSE of the paper: mean(((teacher - student) / rms(teacher))^2).
at::Tensor kd_loss(const at::Tensor& teacher, const at::Tensor& student);

class Distiller {
 public:
  // `bundle` and `teacher` share the architecture; `layout` maps the bundle's blocks.
  Distiller(DecoderLM bundle, DecoderLM teacher, OffsiteLayout layout, DistillOptions o);

  // Emulator block parameters (trainable), named by their bundle parameter names. Also
  // freezes everything else in the bundle and the whole teacher.
  NamedTensors trainable();
  // Loss of one batch; fills extra["kd"] and extra["lm"].
  at::Tensor loss(const Batch& batch, Metrics& extra);

 private:
  DecoderLM bundle_, teacher_;
  OffsiteLayout layout_;
  DistillOptions o_;
  int64_t first_emulator_ = 0, end_emulator_ = 0;  // bundle positions [first, end)
};

}  // namespace ot
