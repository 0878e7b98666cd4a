// data/image_decode.h: PNG (libpng) and JPEG (libjpeg-turbo) files decoded to 8-bit RGB,
// the pixel form every image reader and the image processor (data/image_processor.h) use.
//
// What each input becomes (always height x width x 3 bytes, row-major, R G B):
//   PNG  gray, gray+alpha, palette (with or without tRNS), RGB, RGBA, at 1-16 bits:
//        palette and gray expanded to RGB, alpha dropped (not composited, as PIL's
//        convert("RGB") does), 16-bit samples reduced to their high byte (what PIL does for
//        16-bit RGB; PIL turns 16-bit *gray* into mode I and clips it to 255 on
//        convert("RGB"), which this does not copy), interlaced images de-interlaced.
//   JPEG gray, YCbCr, RGB: libjpeg-turbo's own conversion to RGB with its default (islow)
//        IDCT and fancy upsampling, PIL's settings, so the pixels are PIL's;
//        CMYK and YCCK: converted as Pillow does, R = (255 - C)(255 - K) / 255 (rounded),
//        the inverted values Adobe-marked files store (Photoshop's convention) undone first.
// A file that is neither, is truncated, or is malformed throws one ot::Error naming the file
// and what is wrong; libpng's and libjpeg's own messages are part of it and are never printed.
// A JPEG that ends before its image data does is refused (PIL: "image file is truncated");
// the other libjpeg warnings (extraneous bytes before a marker, ...) are tolerated silently.
// Images above 178956970 pixels (PIL's decompression-bomb error limit) are refused before
// any pixel memory is taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ot {

struct RgbImage {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3) uint8, row-major
};

enum class ImageFileType { kUnknown, kPng, kJpeg };

// The type the first bytes announce (PNG signature, JPEG SOI marker); not the file name.
ImageFileType sniff_image_type(const uint8_t* data, size_t size);

// Decode bytes already in memory; `name` (usually the file path) starts every error message.
RgbImage decode_png(const uint8_t* data, size_t size, const std::string& name);
RgbImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name);
// PNG or JPEG by content (sniff_image_type); anything else is an error naming `name`.
RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name);

// Reads and decodes one file (by content, whatever its extension).
RgbImage read_image_file(const std::string& path);

// PIL's Image.MAX_IMAGE_PIXELS * 2: the size above which PIL raises DecompressionBombError.
constexpr int64_t kMaxImagePixels = 178956970;

}  // namespace ot
