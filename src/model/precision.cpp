// model/precision.cpp: see precision.h.
#include "model/precision.h"

#include <ATen/autocast_mode.h>

#include "util/compat.h"
#include "util/error.h"

namespace ot {

namespace {
c10::DeviceType autocast_type(const c10::Device& d) { return d.is_cuda() ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
}  // namespace

Precision parse_precision(const std::string& text, const std::string& option) {
  if (text == "fp32" || text == "float32") return Precision::kFp32;
  if (text == "bf16" || text == "bfloat16") return Precision::kBf16;
  if (text == "fp16" || text == "float16") return Precision::kFp16;
  fail(option, ": '", text, "' is not a precision; expected fp32, bf16 or fp16");
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    default: return "fp32";
  }
}

c10::ScalarType precision_dtype(Precision p) {
  switch (p) {
    case Precision::kBf16: return c10::kBFloat16;
    case Precision::kFp16: return c10::kHalf;
    default: return c10::kFloat;
  }
}

void check_precision(Precision p, const c10::Device& device, c10::ScalarType weight_dtype, const std::string& option) {
  if (p == Precision::kFp32) return;
  OT_REQUIRE(!(p == Precision::kFp16 && !device.is_cuda()), option,
             ": fp16 mixed precision needs a CUDA device (LibTorch has no fp16 autocast on the CPU); "
             "use --precision bf16 on a CPU, or --device cuda");
  OT_REQUIRE(weight_dtype == c10::kFloat, option, ": ", precision_name(p),
             " mixed precision keeps fp32 master weights, but the weights are ", c10::toString(weight_dtype),
             " (use --dtype fp32 with --precision ", precision_name(p), ", or --precision fp32 with low-precision weights)");
}

AutocastGuard::AutocastGuard(const c10::Device& device, Precision p) {
  if (p == Precision::kFp32) return;
  active_ = true;
  type_ = autocast_type(device);
  prev_enabled_ = compat::autocast_enabled(type_);
  prev_dtype_ = compat::autocast_dtype(type_);
  compat::set_autocast_dtype(type_, precision_dtype(p));
  compat::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast_enabled(type_, prev_enabled_);
  compat::set_autocast_dtype(type_, prev_dtype_);
}

c10::ScalarType compute_dtype(const c10::Device& device, c10::ScalarType weight_dtype) {
  const c10::DeviceType t = autocast_type(device);
  if (weight_dtype == c10::kFloat && compat::autocast_enabled(t)) return compat::autocast_dtype(t);
  return weight_dtype;
}

AutocastState AutocastState::current(const c10::Device& device) {
  const c10::DeviceType t = autocast_type(device);
  return {compat::autocast_enabled(t), compat::autocast_dtype(t)};
}

AutocastRestore::AutocastRestore(const c10::Device& device, const AutocastState& s)
    : type_(autocast_type(device)), prev_(AutocastState::current(device)) {
  compat::set_autocast_dtype(type_, s.dtype);
  compat::set_autocast_enabled(type_, s.enabled);
}

AutocastRestore::~AutocastRestore() {
  compat::set_autocast_enabled(type_, prev_.enabled);
  compat::set_autocast_dtype(type_, prev_.dtype);
}

}  // namespace ot
