// data/image_decode.cpp: see image_decode.h.
//
// libpng and libjpeg report errors by calling a handler that must not return; here the
// handlers copy the message into the decoder's state and longjmp back. Every setjmp sits in
// a small step function that owns no C++ object (nothing with a destructor can be skipped by
// the jump) and returns false on error; the caller owns the buffers and the library state
// (released by a guard) and turns a false into one ot::Error.
#include "data/image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <c10/util/Exception.h>

#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

void require_pixel_budget(int64_t height, int64_t width, const std::string& name, const char* kind) {
  OT_REQUIRE(height > 0 && width > 0, name, ": ", kind, " of ", width, " x ", height,
             " pixels, expected a non-empty image");
  OT_REQUIRE(height <= kMaxImagePixels / width, name, ": ", kind, " of ", width, " x ", height,
             " pixels is above the ", kMaxImagePixels, "-pixel limit (PIL's decompression-bomb limit)");
}

// ---------------------------------------------------------------- PNG (libpng 1.6)

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {};
};

void png_on_error(png_structp png, png_const_charp what) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", what);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}  // libpng would print it to stderr

void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (st->size - st->pos < n) png_error(png, "unexpected end of file (the file is truncated)");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

// Reads the chunks before the pixels and asks libpng for 8-bit RGB rows.
bool png_read_header(PngState* st, png_uint_32* width, png_uint_32* height) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_read_info(st->png, st->info);
  *width = png_get_image_width(st->png, st->info);
  *height = png_get_image_height(st->png, st->info);
  png_set_expand(st->png);       // palette -> RGB, gray below 8 bits -> 8 bits, tRNS -> alpha
  png_set_strip_16(st->png);     // 16-bit samples -> their high byte
  png_set_strip_alpha(st->png);  // alpha dropped, not composited
  png_set_gray_to_rgb(st->png);
  png_set_interlace_handling(st->png);
  png_read_update_info(st->png, st->info);
  return true;
}

bool png_read_rows(PngState* st, png_bytepp rows) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_read_image(st->png, rows);
  return true;
}

struct PngGuard {
  PngState* st;
  ~PngGuard() { png_destroy_read_struct(&st->png, st->info ? &st->info : nullptr, nullptr); }
};

// ---------------------------------------------------------------- JPEG (libjpeg-turbo)

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;  // cinfo.err points here; the handlers find the state through cinfo
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool created = false;
};

JpegState* jpeg_state(j_common_ptr cinfo) { return static_cast<JpegState*>(cinfo->client_data); }

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  JpegState* st = jpeg_state(cinfo);
  (*cinfo->err->format_message)(cinfo, st->message);
  std::longjmp(st->jump, 1);
}

// Warnings (level -1) and trace messages. libjpeg pads a truncated file with grey and only
// warns; that becomes an error here. The other warnings are tolerated.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level != -1) return;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
    JpegState* st = jpeg_state(cinfo);
    std::snprintf(st->message, sizeof st->message, "%s",
                  "truncated: the file ends before its image data does");
    std::longjmp(st->jump, 1);
  }
  cinfo->err->num_warnings++;
}

void jpeg_print_nothing(j_common_ptr) {}

bool jpeg_read_header_step(JpegState* st, const uint8_t* data, size_t size) {
  if (setjmp(st->jump)) return false;
  jpeg_create_decompress(&st->cinfo);
  st->created = true;
  st->cinfo.client_data = st;
  jpeg_mem_src(&st->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&st->cinfo, TRUE);
  const bool cmyk = st->cinfo.jpeg_color_space == JCS_CMYK || st->cinfo.jpeg_color_space == JCS_YCCK;
  st->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  return true;
}

bool jpeg_start_step(JpegState* st) {
  if (setjmp(st->jump)) return false;
  jpeg_start_decompress(&st->cinfo);
  return true;
}

bool jpeg_read_rows_step(JpegState* st, uint8_t* out, size_t row_bytes) {
  if (setjmp(st->jump)) return false;
  while (st->cinfo.output_scanline < st->cinfo.output_height) {
    JSAMPROW row = out + static_cast<size_t>(st->cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&st->cinfo, &row, 1);
  }
  return true;
}

struct JpegGuard {
  JpegState* st;
  ~JpegGuard() {
    if (st->created) jpeg_destroy_decompress(&st->cinfo);
  }
};

// Pillow's a * b / 255, rounded (its MULDIV255).
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// Pillow reads every 4-component JPEG as Adobe-inverted CMYK (rawmode "CMYK;I") and then
// converts with R = (255 - K) - (255 - K) * C / 255, where C, K are the un-inverted values.
void cmyk_to_rgb(const uint8_t* cmyk, int64_t n_pixels, uint8_t* rgb) {
  for (int64_t i = 0; i < n_pixels; ++i) {
    const uint8_t* p = cmyk + 4 * i;
    const int not_k = p[3];  // 255 - K of the inverted value
    for (int c = 0; c < 3; ++c) rgb[3 * i + c] = static_cast<uint8_t>(not_k - muldiv255(255 - p[c], not_k));
  }
}

}  // namespace

ImageFileType sniff_image_type(const uint8_t* data, size_t size) {
  static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return ImageFileType::kPng;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFileType::kJpeg;
  return ImageFileType::kUnknown;
}

RgbImage decode_png(const uint8_t* data, size_t size, const std::string& name) {
  OT_REQUIRE(sniff_image_type(data, size) == ImageFileType::kPng, name,
             ": not a PNG file (it does not start with the PNG signature)");
  PngState st;
  st.data = data;
  st.size = size;
  st.pos = 8;
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_on_error, png_on_warning);
  OT_REQUIRE(st.png != nullptr, name, ": libpng could not allocate its decoder");
  PngGuard guard{&st};
  st.info = png_create_info_struct(st.png);
  OT_REQUIRE(st.info != nullptr, name, ": libpng could not allocate its decoder");
  png_set_read_fn(st.png, &st, png_read_from_memory);
  png_set_sig_bytes(st.png, 8);

  png_uint_32 width = 0, height = 0;
  if (!png_read_header(&st, &width, &height)) fail(name, ": not a valid PNG file (libpng: ", st.message, ")");
  require_pixel_budget(height, width, name, "PNG");
  TORCH_INTERNAL_ASSERT(png_get_channels(st.png, st.info) == 3 &&
                        png_get_rowbytes(st.png, st.info) == static_cast<size_t>(width) * 3);

  RgbImage image;
  image.height = height;
  image.width = width;
  image.pixels.resize(static_cast<size_t>(height) * width * 3);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = image.pixels.data() + static_cast<size_t>(y) * width * 3;
  if (!png_read_rows(&st, rows.data())) fail(name, ": not a valid PNG file (libpng: ", st.message, ")");
  return image;
}

RgbImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  OT_REQUIRE(sniff_image_type(data, size) == ImageFileType::kJpeg, name,
             ": not a JPEG file (it does not start with the JPEG SOI marker FF D8 FF)");
  JpegState st;
  st.cinfo.err = jpeg_std_error(&st.err);
  st.err.error_exit = jpeg_on_error;
  st.err.emit_message = jpeg_on_message;
  st.err.output_message = jpeg_print_nothing;
  st.cinfo.client_data = &st;  // read by the handlers before jpeg_create_decompress returns
  JpegGuard guard{&st};
  auto bad = [&]() { fail(name, ": not a valid JPEG file (libjpeg: ", st.message, ")"); };

  if (!jpeg_read_header_step(&st, data, size)) bad();
  require_pixel_budget(st.cinfo.image_height, st.cinfo.image_width, name, "JPEG");
  if (!jpeg_start_step(&st)) bad();
  const int components = st.cinfo.output_components;
  TORCH_INTERNAL_ASSERT(components == (st.cinfo.out_color_space == JCS_CMYK ? 4 : 3));

  RgbImage image;
  image.height = st.cinfo.output_height;
  image.width = st.cinfo.output_width;
  const size_t n_pixels = static_cast<size_t>(image.height) * image.width;
  if (components == 3) {
    image.pixels.resize(n_pixels * 3);
    if (!jpeg_read_rows_step(&st, image.pixels.data(), static_cast<size_t>(image.width) * 3)) bad();
  } else {
    std::vector<uint8_t> cmyk(n_pixels * 4);
    if (!jpeg_read_rows_step(&st, cmyk.data(), static_cast<size_t>(image.width) * 4)) bad();
    image.pixels.resize(n_pixels * 3);
    cmyk_to_rgb(cmyk.data(), static_cast<int64_t>(n_pixels), image.pixels.data());
  }
  return image;
}

RgbImage decode_image(const uint8_t* data, size_t size, const std::string& name) {
  switch (sniff_image_type(data, size)) {
    case ImageFileType::kPng:
      return decode_png(data, size, name);
    case ImageFileType::kJpeg:
      return decode_jpeg(data, size, name);
    case ImageFileType::kUnknown:
      break;
  }
  fail(name, ": not a PNG or JPEG file (its first bytes are neither signature)");
}

RgbImage read_image_file(const std::string& path) {
  const std::vector<char> bytes = read_binary_file(path);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

}  // namespace ot
