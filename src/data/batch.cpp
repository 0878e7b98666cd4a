// data/batch.cpp: see batch.h.
#include "data/batch.h"

namespace ot {

namespace {
at::Tensor move(const at::Tensor& t, const c10::Device& device) {
  if (!t.defined() || t.device() == device) return t;
  if (t.is_cpu()) return t.pin_memory().to(device, /*non_blocking=*/true);
  return t.to(device);
}
}  // namespace

Batch to_device(const Batch& b, const c10::Device& device) {
  if (!device.is_cuda()) return b;
  Batch out;
  out.input_ids = move(b.input_ids, device);
  out.attention_mask = move(b.attention_mask, device);
  out.labels = move(b.labels, device);
  out.pixel_values = move(b.pixel_values, device);
  out.tokens = b.tokens;
  return out;
}

}  // namespace ot
