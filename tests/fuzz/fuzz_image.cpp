// tests/fuzz/fuzz_image.cpp: libFuzzer target for the image decoders (data/image_decode.h):
// the input is decoded as whatever its first bytes say (PNG, JPEG), then forced through both
// decoders. Any input must decode to a consistent RGB image or throw ot::Error; anything else
// escaping, a crash, a leak, libpng's or libjpeg's output on stderr, or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "data/image_decode.h"
#include "fuzz_common.h"
#include "util/error.h"

namespace {

void check(const ot::RgbImage& img) {
  // A decoded image is (H, W, 3) bytes, nothing more or less.
  if (img.height <= 0 || img.width <= 0 ||
      img.pixels.size() != static_cast<std::size_t>(img.height) * static_cast<std::size_t>(img.width) * 3)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    check(ot::decode_image(data, size, "input"));
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  try {
    check(ot::decode_png(data, size, "input.png"));
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  try {
    check(ot::decode_jpeg(data, size, "input.jpg"));
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
