// util/gpu.h: what the GPU path measures and asks of the CUDA runtime, behind one
// interface that also answers on a CPU-only build. Peak memory comes from LibTorch's CUDA
// caching allocator (what tensors held at most, reset per stage), times from CUDA events
// on the stream LibTorch computes on, and model FLOP utilisation from the device's peak
// dense rate for the compute dtype.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <chrono>
#include <memory>
#include <string>

namespace ot::gpu {

// True when this binary was built against a LibTorch with CUDA (its caching allocator,
// events and streams are compiled in); the device itself may still be absent.
bool built_with_cuda();
int device_count();  // 0 on a CPU-only build or without a usable driver

// Marketing name of a CUDA device ("NVIDIA H200"), or "cpu".
std::string device_name(const c10::Device& d);
// Total memory of a CUDA device in MiB (0 for the CPU).
double total_memory_mib(const c10::Device& d);

// Peak memory allocated to tensors on a CUDA device since the last reset, in MiB; 0 for the
// CPU (util/memory.h has the process's resident set). The reset starts a stage's own peak.
double peak_memory_mib(const c10::Device& d);
void reset_peak_memory(const c10::Device& d);

// Waits for every kernel queued on `d` (no-op on the CPU).
void synchronize(const c10::Device& d);

// The CUDA stream LibTorch queues work on for `device_index`, as an opaque cudaStream_t
// (nullptr, the default stream, on a build without CUDA).
void* current_stream(int device_index);

// Elapsed time of a region of device work: CUDA events recorded on the current stream
// (elapsed() waits for the end event), or the wall clock on the CPU.
class Timer {
 public:
  explicit Timer(const c10::Device& d);
  ~Timer();
  void start();
  void stop();
  double seconds() const;  // between the last start() and stop(); synchronises on CUDA

 private:
  c10::Device device_;
  struct Events;
  std::unique_ptr<Events> events_;
  std::chrono::steady_clock::time_point t0_, t1_;
};

// The device's peak dense matrix rate for `dtype` in FLOP/s (bf16/fp16 tensor cores,
// fp32 without TF32), from a table of data-centre GPUs; $OT_PEAK_TFLOPS overrides it, and
// 0 means unknown (CPUs, unlisted GPUs): model FLOP utilisation is then not reported.
double peak_flops(const c10::Device& d, c10::ScalarType dtype);

}  // namespace ot::gpu
