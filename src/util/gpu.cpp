// util/gpu.cpp: see gpu.h. The CUDA parts compile only against a LibTorch built with CUDA
// (OT_TORCH_CUDA, set by CMake when the Torch package has c10_cuda).
#include "util/gpu.h"

#include <cstdlib>

#include "util/error.h"

#if OT_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace ot::gpu {

bool built_with_cuda() { return OT_TORCH_CUDA != 0; }

int device_count() {
#if OT_TORCH_CUDA
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

std::string device_name(const c10::Device& d) {
#if OT_TORCH_CUDA
  if (d.is_cuda()) return at::cuda::getDeviceProperties(d.has_index() ? d.index() : 0)->name;
#endif
  return d.is_cuda() ? "cuda (no CUDA support in this build)" : "cpu";
}

double total_memory_mib(const c10::Device& d) {
#if OT_TORCH_CUDA
  if (d.is_cuda())
    return double(at::cuda::getDeviceProperties(d.has_index() ? d.index() : 0)->totalGlobalMem) / (1024.0 * 1024.0);
#endif
  (void)d;
  return 0.0;
}

double peak_memory_mib(const c10::Device& d) {
#if OT_TORCH_CUDA
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.has_index() ? d.index() : 0);
    // Entry 0 of a stat array is StatType::AGGREGATE (over the small and large pools); the
    // enum itself moved between LibTorch versions (2.5: c10::CachingDeviceAllocator).
    return double(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  (void)d;
  return 0.0;
}

void reset_peak_memory(const c10::Device& d) {
#if OT_TORCH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.has_index() ? d.index() : 0);
#endif
  (void)d;
}

void synchronize(const c10::Device& d) {
#if OT_TORCH_CUDA
  if (d.is_cuda()) c10::cuda::getCurrentCUDAStream(d.has_index() ? d.index() : 0).synchronize();
#endif
  (void)d;
}

void* current_stream(int device_index) {
#if OT_TORCH_CUDA
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_index)).stream());
#else
  (void)device_index;
  return nullptr;
#endif
}

struct Timer::Events {
#if OT_TORCH_CUDA
  at::cuda::CUDAEvent begin{cudaEventDefault}, end{cudaEventDefault};
#endif
};

Timer::Timer(const c10::Device& d) : device_(d), events_(std::make_unique<Events>()) {}
Timer::~Timer() = default;

void Timer::start() {
#if OT_TORCH_CUDA
  if (device_.is_cuda()) {
    events_->begin.record(c10::cuda::getCurrentCUDAStream(device_.has_index() ? device_.index() : 0));
    return;
  }
#endif
  t0_ = std::chrono::steady_clock::now();
}

void Timer::stop() {
#if OT_TORCH_CUDA
  if (device_.is_cuda()) {
    events_->end.record(c10::cuda::getCurrentCUDAStream(device_.has_index() ? device_.index() : 0));
    return;
  }
#endif
  t1_ = std::chrono::steady_clock::now();
}

double Timer::seconds() const {
#if OT_TORCH_CUDA
  if (device_.is_cuda()) {
    events_->end.synchronize();
    return double(events_->begin.elapsed_time(events_->end)) / 1000.0;
  }
#endif
  return std::chrono::duration<double>(t1_ - t0_).count();
}

double peak_flops(const c10::Device& d, c10::ScalarType dtype) {
  if (const char* env = std::getenv("OT_PEAK_TFLOPS")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    OT_REQUIRE(end != env && *end == '\0' && v > 0, "$OT_PEAK_TFLOPS: expected a positive number of TFLOP/s, got '",
               env, "'");
    return v * 1e12;
  }
  if (!d.is_cuda()) return 0.0;
  const std::string name = device_name(d);
  const bool half = dtype == c10::kBFloat16 || dtype == c10::kHalf;
  // Dense rates from the vendors' datasheets (SXM parts), in TFLOP/s: {16-bit, fp32}.
  struct Row { const char* key; double half, single; };
  static const Row table[] = {{"H200", 989.4, 66.9}, {"H100", 989.4, 66.9}, {"GH200", 989.4, 66.9},
                              {"A100", 312.0, 19.5}, {"L40S", 362.1, 91.6}, {"V100", 125.0, 15.7}};
  for (const Row& r : table)
    if (name.find(r.key) != std::string::npos) return (half ? r.half : r.single) * 1e12;
  return 0.0;
}

}  // namespace ot::gpu
