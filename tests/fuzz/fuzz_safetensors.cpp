// tests/fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors header parser.
// Any input must either parse or throw ot::Error; a crash, a sanitizer report, or any
// other exception escaping is a bug. Torch-free: built from its .sources list only.
//
// Build and run (from the repository root; ~20 s):
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
//     -DOT_BUILD_FUZZ=ON -DOT_BUILD_TESTS=OFF -DOT_BUILD_BENCH=OFF -DOT_USE_PCH=OFF
//   cmake --build build-fuzz -j2
//   mkdir -p build-fuzz/corpus-safetensors
//   ./build-fuzz/tests/fuzz_safetensors -max_total_time=20 -max_len=4096 \
//     build-fuzz/corpus-safetensors tests/fuzz/seeds/safetensors
#include <cstddef>
#include <cstdint>

#include "checkpoint/safetensors_header.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    ot::SafetensorsHeader h =
        ot::parse_safetensors_header(reinterpret_cast<const char*>(data), size, "fuzz.safetensors");
    // Whatever was accepted must describe bytes inside the input.
    for (const auto& e : h.entries) {
      if (e.begin > e.end || h.data_offset + e.end > size) __builtin_trap();
    }
  } catch (const ot::Error&) {
    // Rejected with a message: the expected outcome for most inputs.
  }
  return 0;
}
