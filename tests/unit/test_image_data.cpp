// tests/unit/test_image_data.cpp: the image data path. PNG and JPEG files written here with
// libpng / libjpeg and decoded back; image-folder trees, CIFAR-10/100 batches and IDX files
// made here, and Fashion-MNIST from Debian's dataset-fashion-mnist package; every reader's
// errors; Pillow-style resizing against values worked out by hand; HF center crop and
// normalisation; preprocessor_config.json parsing; seeded augmentation; batches.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "data/image_datasets.h"
#include "data/image_decode.h"
#include "data/image_processor.h"
#include "test_support.h"
#include "util/error.h"

namespace ot {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;
using test::write_file;

// ---------------------------------------------------------------- writers

struct PngSpec {
  int width = 0;
  int height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<uint8_t> rows;        // packed rows as PNG stores them (16-bit: big-endian)
  std::vector<png_color> palette;   // PNG_COLOR_TYPE_PALETTE
  std::vector<uint8_t> palette_alpha;  // tRNS for the palette
};

// Returns false if libpng reported an error (the spec and file are owned by the caller, so
// nothing with a destructor lives between setjmp and a longjmp).
bool write_png_rows(png_structp png, png_infop info, const PngSpec& s, png_bytepp rows, FILE* f) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, f);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  if (!s.palette_alpha.empty())
    png_set_tRNS(png, info, s.palette_alpha.data(), static_cast<int>(s.palette_alpha.size()), nullptr);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

void write_png(const std::string& path, const PngSpec& s) {
  const size_t row_bytes = s.rows.size() / static_cast<size_t>(s.height);
  std::vector<png_bytep> rows(s.height);
  for (int y = 0; y < s.height; ++y) rows[y] = const_cast<uint8_t*>(s.rows.data()) + y * row_bytes;
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const bool ok = write_png_rows(png, info, s, rows.data(), f);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
  ASSERT_TRUE(ok) << "libpng could not write " << path;
}

// An 8-bit RGB PNG from (h, w, 3) pixels.
void write_rgb_png(const std::string& path, int height, int width, const std::vector<uint8_t>& rgb) {
  PngSpec s;
  s.width = width;
  s.height = height;
  s.rows = rgb;
  write_png(path, s);
}

// A baseline JPEG, quality 95 and no chroma subsampling, of `components` 1 (gray), 3 (RGB)
// or 4 (CMYK, stored as given).
void write_jpeg(const std::string& path, int height, int width, int components, const std::vector<uint8_t>& data,
                int quality = 95) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = width;
  c.image_height = height;
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(data.data()) + static_cast<size_t>(c.next_scanline) * width * components;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

std::vector<uint8_t> gradient_rgb(int height, int width) {
  std::vector<uint8_t> px;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      px.push_back(static_cast<uint8_t>(x * 255 / std::max(width - 1, 1)));
      px.push_back(static_cast<uint8_t>(y * 255 / std::max(height - 1, 1)));
      px.push_back(static_cast<uint8_t>(128));
    }
  return px;
}

std::string file_bytes(const std::string& path) { return test::slurp(path); }

at::Tensor tensor_of(const RgbImage& img) {
  return at::tensor(img.pixels, at::kByte).view({img.height, img.width, 3});
}

// (h, w, c) uint8 tensor from values listed row by row.
at::Tensor u8_image(int64_t h, int64_t w, int64_t c, const std::vector<int>& values) {
  std::vector<uint8_t> v(values.begin(), values.end());
  return at::tensor(v, at::kByte).view({h, w, c});
}

std::vector<int> as_ints(const at::Tensor& t) {
  const at::Tensor c = t.contiguous().to(at::kInt);
  return std::vector<int>(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
}

// ---------------------------------------------------------------- decoding

TEST(ImageDataDecode, PngRgbIsExact) {
  TempDir dir;
  std::vector<uint8_t> px;
  for (int i = 0; i < 5 * 3 * 3; ++i) px.push_back(static_cast<uint8_t>(i * 37 % 256));
  write_rgb_png(dir.file("a.png"), 3, 5, px);
  const RgbImage img = read_image_file(dir.file("a.png"));
  EXPECT_EQ(img.height, 3);
  EXPECT_EQ(img.width, 5);
  EXPECT_EQ(img.pixels, px);
}

TEST(ImageDataDecode, PngGrayBecomesThreeEqualChannels) {
  TempDir dir;
  PngSpec s;
  s.width = 4;
  s.height = 2;
  s.color_type = PNG_COLOR_TYPE_GRAY;
  s.rows = {0, 10, 200, 255, 1, 2, 3, 4};
  write_png(dir.file("g.png"), s);
  const RgbImage img = read_image_file(dir.file("g.png"));
  ASSERT_EQ(img.pixels.size(), 8u * 3);
  for (size_t i = 0; i < 8; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(img.pixels[i * 3 + c], s.rows[i]) << i;

  // 1-bit gray: 0 and 1 become 0 and 255.
  PngSpec b;
  b.width = 8;
  b.height = 1;
  b.color_type = PNG_COLOR_TYPE_GRAY;
  b.bit_depth = 1;
  b.rows = {0b10100000};
  write_png(dir.file("b.png"), b);
  const RgbImage bits = read_image_file(dir.file("b.png"));
  EXPECT_EQ(as_ints(tensor_of(bits).select(2, 1)), (std::vector<int>{255, 0, 255, 0, 0, 0, 0, 0}));
}

TEST(ImageDataDecode, PngPaletteWithTransparencyBecomesItsColours) {
  TempDir dir;
  PngSpec s;
  s.width = 4;
  s.height = 1;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.bit_depth = 2;
  s.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 8, 7}};
  s.palette_alpha = {0, 128};  // entries 0 and 1 (partly) transparent: alpha dropped, colour kept
  s.rows = {0b00011011};       // indices 0 1 2 3
  write_png(dir.file("p.png"), s);
  const RgbImage img = read_image_file(dir.file("p.png"));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7}));
}

TEST(ImageDataDecode, Png16BitKeepsTheHighByte) {
  TempDir dir;
  PngSpec s;
  s.width = 2;
  s.height = 1;
  s.bit_depth = 16;
  s.rows = {0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF, 0x00, 0x80, 0x7F, 0xFF, 0x01, 0x00};
  write_png(dir.file("rgb16.png"), s);
  EXPECT_EQ(read_image_file(dir.file("rgb16.png")).pixels, (std::vector<uint8_t>{0x12, 0xAB, 0xFF, 0x00, 0x7F, 0x01}));

  PngSpec g;
  g.width = 2;
  g.height = 1;
  g.bit_depth = 16;
  g.color_type = PNG_COLOR_TYPE_GRAY;
  g.rows = {0xC8, 0x10, 0x05, 0xFF};
  write_png(dir.file("gray16.png"), g);
  EXPECT_EQ(read_image_file(dir.file("gray16.png")).pixels, (std::vector<uint8_t>{0xC8, 0xC8, 0xC8, 0x05, 0x05, 0x05}));
}

TEST(ImageDataDecode, PngAlphaIsDroppedNotComposited) {
  TempDir dir;
  PngSpec s;
  s.width = 2;
  s.height = 1;
  s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  s.rows = {10, 20, 30, 0, 200, 100, 50, 255};
  write_png(dir.file("rgba.png"), s);
  EXPECT_EQ(read_image_file(dir.file("rgba.png")).pixels, (std::vector<uint8_t>{10, 20, 30, 200, 100, 50}));

  PngSpec ga;
  ga.width = 1;
  ga.height = 1;
  ga.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  ga.rows = {77, 3};
  write_png(dir.file("ga.png"), ga);
  EXPECT_EQ(read_image_file(dir.file("ga.png")).pixels, (std::vector<uint8_t>{77, 77, 77}));
}

TEST(ImageDataDecode, PngInterlacedIsExact) {
  TempDir dir;
  std::vector<uint8_t> px;
  for (int i = 0; i < 9 * 11 * 3; ++i) px.push_back(static_cast<uint8_t>((i * 91 + 7) % 256));
  PngSpec s;
  s.width = 11;
  s.height = 9;
  s.interlaced = true;
  s.rows = px;
  write_png(dir.file("adam7.png"), s);
  EXPECT_EQ(read_image_file(dir.file("adam7.png")).pixels, px);
}

TEST(ImageDataDecode, JpegRgbAndGrayWithinTolerance) {
  TempDir dir;
  const std::vector<uint8_t> rgb = gradient_rgb(16, 24);
  write_jpeg(dir.file("c.jpg"), 16, 24, 3, rgb);
  const RgbImage img = read_image_file(dir.file("c.jpg"));
  ASSERT_EQ(img.height, 16);
  ASSERT_EQ(img.width, 24);
  const at::Tensor diff = (tensor_of(img).to(at::kInt) - u8_image(16, 24, 3, std::vector<int>(rgb.begin(), rgb.end())).to(at::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 6);
  EXPECT_LT(diff.to(at::kFloat).mean().item<float>(), 1.5f);

  std::vector<uint8_t> gray;
  for (int i = 0; i < 8 * 8; ++i) gray.push_back(static_cast<uint8_t>(i * 4));
  write_jpeg(dir.file("g.jpeg"), 8, 8, 1, gray);
  const RgbImage g = read_image_file(dir.file("g.jpeg"));
  const at::Tensor t = tensor_of(g).to(at::kInt);
  EXPECT_TRUE(t.select(2, 0).equal(t.select(2, 1)) && t.select(2, 0).equal(t.select(2, 2)));
  const at::Tensor want = at::tensor(std::vector<int>(gray.begin(), gray.end())).view({8, 8});
  EXPECT_LE((t.select(2, 0) - want).abs().max().item<int>(), 4);
}

TEST(ImageDataDecode, JpegCmykIsConvertedAsPillowDoes) {
  // Pillow reads 4-component JPEGs as inverted (Adobe) CMYK: stored (c, m, y, k) gives
  // R = k - k * (255 - c) / 255 (rounded), and likewise G from m and B from y.
  TempDir dir;
  std::vector<uint8_t> cmyk;
  for (int i = 0; i < 16 * 16; ++i) cmyk.insert(cmyk.end(), {255, 128, 0, 200});
  write_jpeg(dir.file("cmyk.jpg"), 16, 16, 4, cmyk, 100);
  const at::Tensor img = tensor_of(read_image_file(dir.file("cmyk.jpg"))).to(at::kInt);
  // 200 - 200 * 0 / 255 = 200; 200 - round(200 * 127 / 255) = 100; 200 - 200 = 0.
  const at::Tensor want = at::tensor(std::vector<int>{200, 100, 0}).view({1, 1, 3});
  EXPECT_LE((img - want).abs().max().item<int>(), 2);
}

TEST(ImageDataDecode, SniffsByContentNotName) {
  TempDir dir;
  write_rgb_png(dir.file("really_png.jpg"), 1, 1, {1, 2, 3});
  EXPECT_EQ(read_image_file(dir.file("really_png.jpg")).pixels, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(ImageDataDecode, TruncatedAndMalformedFilesAreOneErrorNamingTheFile) {
  TempDir dir;
  write_rgb_png(dir.file("ok.png"), 8, 8, gradient_rgb(8, 8));
  const std::string png = file_bytes(dir.file("ok.png"));
  write_file(dir.file("cut.png"), png.substr(0, png.size() / 2));
  expect_error([&] { read_image_file(dir.file("cut.png")); }, {dir.file("cut.png"), "truncated"});

  std::string bad_crc = png;
  bad_crc[29] ^= 0x55;  // inside IHDR's CRC (8 signature + 4 length + 4 type + 13 data = 29)
  write_file(dir.file("crc.png"), bad_crc);
  expect_error([&] { read_image_file(dir.file("crc.png")); }, {dir.file("crc.png"), "not a valid PNG", "CRC"});

  write_jpeg(dir.file("ok.jpg"), 32, 32, 3, gradient_rgb(32, 32));
  const std::string jpg = file_bytes(dir.file("ok.jpg"));
  write_file(dir.file("cut.jpg"), jpg.substr(0, jpg.size() * 2 / 3));
  testing::internal::CaptureStderr();
  expect_error([&] { read_image_file(dir.file("cut.jpg")); }, {dir.file("cut.jpg"), "truncated"});
  write_file(dir.file("junk.jpg"), std::string("\xFF\xD8\xFF\xE0") + " this is not JPEG data at all");
  expect_error([&] { read_image_file(dir.file("junk.jpg")); }, {dir.file("junk.jpg"), "not a valid JPEG", "libjpeg"});
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << "libjpeg printed a message";

  write_file(dir.file("text.png"), "hello");
  expect_error([&] { read_image_file(dir.file("text.png")); }, {dir.file("text.png"), "not a PNG or JPEG"});
  write_file(dir.file("empty.jpg"), "");
  expect_error([&] { read_image_file(dir.file("empty.jpg")); }, {dir.file("empty.jpg"), "not a PNG or JPEG"});
  expect_error([&] { read_image_file(dir.file("missing.png")); }, {dir.file("missing.png")});
  // The right signature on the wrong decoder.
  const std::string& bytes = png;
  expect_error([&] { decode_jpeg(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.png"); },
               {"x.png", "not a JPEG file"});
}

// ---------------------------------------------------------------- image folder

TEST(ImageDataFolder, ClassesSortedFilesInTorchvisionOrder) {
  TempDir dir;
  const std::string root = dir.file("data");
  for (const char* d : {"data/cat", "data/dog", "data/ant/sub", "data/cat/.hidden"}) fs::create_directories(dir.file(d));
  write_rgb_png(dir.file("data/cat/b.png"), 2, 3, std::vector<uint8_t>(18, 50));
  write_jpeg(dir.file("data/cat/a.JPG"), 8, 8, 3, gradient_rgb(8, 8));
  write_rgb_png(dir.file("data/dog/x.PNG"), 1, 1, {7, 8, 9});
  write_rgb_png(dir.file("data/ant/z.png"), 1, 2, {1, 1, 1, 2, 2, 2});
  write_rgb_png(dir.file("data/ant/sub/y.png"), 1, 1, {3, 3, 3});
  write_file(dir.file("data/.DS_Store"), "x");
  write_file(dir.file("data/cat/.hidden/notes.txt"), "x");

  const ImageDataset ds = load_image_dataset("imagefolder", root, "train");
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"ant", "cat", "dog"}));
  ASSERT_EQ(ds.size(), 5);
  // sorted(os.walk()): data/ant before data/ant/sub; files by name within a folder.
  EXPECT_EQ(ds.files, (std::vector<std::string>{root + "/ant/z.png", root + "/ant/sub/y.png", root + "/cat/a.JPG",
                                                root + "/cat/b.png", root + "/dog/x.PNG"}));
  EXPECT_EQ(as_ints(ds.labels), (std::vector<int>{0, 0, 1, 1, 2}));
  EXPECT_EQ(ds.labels.scalar_type(), at::kLong);
  EXPECT_EQ(ds.image(0).sizes(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(ds.image(2).sizes(), (std::vector<int64_t>{8, 8, 3}));
  EXPECT_EQ(as_ints(ds.image(4)), (std::vector<int>{7, 8, 9}));
  EXPECT_EQ(as_ints(ds.image(1)), (std::vector<int>{3, 3, 3}));
  EXPECT_EQ(ds.pixels.numel(), 6 + 3 + 192 + 18 + 3);
}

TEST(ImageDataFolder, SplitFolderIsUsedWhenPresent) {
  TempDir dir;
  fs::create_directories(dir.file("d/train/a"));
  fs::create_directories(dir.file("d/test/a"));
  fs::create_directories(dir.file("d/test/b"));
  write_rgb_png(dir.file("d/train/a/1.png"), 1, 1, {1, 1, 1});
  write_rgb_png(dir.file("d/test/a/1.png"), 1, 1, {2, 2, 2});
  write_rgb_png(dir.file("d/test/b/1.png"), 1, 1, {3, 3, 3});
  EXPECT_EQ(load_image_folder(dir.file("d"), "train").class_names, (std::vector<std::string>{"a"}));
  const ImageDataset test = load_image_folder(dir.file("d"), "test");
  EXPECT_EQ(test.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(test.root, dir.file("d/test"));
}

TEST(ImageDataFolder, Errors) {
  TempDir dir;
  fs::create_directories(dir.file("empty"));
  expect_error([&] { load_image_folder(dir.file("empty"), "train"); }, {dir.file("empty"), "no class folders"});
  expect_error([&] { load_image_folder(dir.file("nowhere"), "train"); }, {dir.file("nowhere"), "not a directory"});

  fs::create_directories(dir.file("noimg/a"));
  fs::create_directories(dir.file("noimg/b"));
  write_rgb_png(dir.file("noimg/a/1.png"), 1, 1, {1, 1, 1});
  expect_error([&] { load_image_folder(dir.file("noimg"), "train"); },
               {dir.file("noimg/b"), "class folder has no images"});

  fs::create_directories(dir.file("ext/a"));
  write_rgb_png(dir.file("ext/a/1.png"), 1, 1, {1, 1, 1});
  write_file(dir.file("ext/a/2.gif"), "GIF89a");
  expect_error([&] { load_image_folder(dir.file("ext"), "train"); },
               {dir.file("ext/a/2.gif"), "'.gif'", ".png, .jpg, .jpeg"});
  fs::remove(dir.file("ext/a/2.gif"));
  write_file(dir.file("ext/a/README"), "x");
  expect_error([&] { load_image_folder(dir.file("ext"), "train"); }, {dir.file("ext/a/README"), "no extension"});

  fs::create_directories(dir.file("stray/a"));
  write_rgb_png(dir.file("stray/a/1.png"), 1, 1, {1, 1, 1});
  write_file(dir.file("stray/labels.csv"), "x");
  expect_error([&] { load_image_folder(dir.file("stray"), "train"); },
               {dir.file("stray/labels.csv"), "directly in the image-folder root"});

  fs::create_directories(dir.file("broken/a"));
  write_rgb_png(dir.file("broken/a/1.png"), 1, 1, {1, 1, 1});
  write_file(dir.file("broken/a/2.jpg"), "\xFF\xD8\xFF\xDB broken");
  expect_error([&] { load_image_folder(dir.file("broken"), "train"); }, {dir.file("broken/a/2.jpg"), "JPEG"});

  expect_error([&] { load_image_folder(dir.file("broken"), "validation"); }, {"'validation'", "train or test"});
  expect_error([&] { load_image_dataset("coco", dir.file("broken"), "train"); },
               {"'coco'", "imagefolder, cifar10, cifar100, idx"});
}

// ---------------------------------------------------------------- CIFAR

// One CIFAR record: label byte(s), then the R, G, B planes; pixel (y, x) of plane c holds
// (seed + c * 50 + y * 3 + x) % 256.
std::string cifar_record(const std::vector<uint8_t>& labels, int seed) {
  std::string r(labels.begin(), labels.end());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) r.push_back(static_cast<char>((seed + c * 50 + y * 3 + x) % 256));
  return r;
}

TEST(ImageDataCifar, Cifar10BatchesInOrderWithNames) {
  TempDir dir;
  const std::string d = dir.file("cifar-10-batches-bin");
  fs::create_directories(d);
  write_file(d + "/data_batch_1.bin", cifar_record({3}, 0) + cifar_record({9}, 1));
  write_file(d + "/data_batch_2.bin", cifar_record({0}, 2));
  write_file(d + "/data_batch_10.bin", cifar_record({5}, 3));
  write_file(d + "/test_batch.bin", cifar_record({7}, 4));
  std::string names;
  for (const char* n : {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"})
    names += std::string(n) + "\n";
  write_file(d + "/batches.meta.txt", names + "\n\n");

  const ImageDataset train = load_image_dataset("cifar10", dir.path(), "train");  // finds the inner folder
  EXPECT_EQ(train.root, d);
  ASSERT_EQ(train.size(), 4);
  EXPECT_EQ(as_ints(train.labels), (std::vector<int>{3, 9, 0, 5}));  // batch 1, 2, then 10
  EXPECT_EQ(train.class_names.size(), 10u);
  EXPECT_EQ(train.class_names[3], "cat");
  // Planar on disk, (32, 32, 3) here: example 2 (seed 2), pixel (y=5, x=7).
  const at::Tensor img = train.image(2);
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{32, 32, 3}));
  EXPECT_EQ(as_ints(img[5][7]), (std::vector<int>{2 + 15 + 7, 2 + 50 + 15 + 7, 2 + 100 + 15 + 7}));

  const ImageDataset test = load_cifar10(d, "test");
  EXPECT_EQ(as_ints(test.labels), (std::vector<int>{7}));
  EXPECT_EQ(as_ints(test.image(0)[0][0]), (std::vector<int>{4, 54, 104}));

  fs::remove(d + "/batches.meta.txt");
  EXPECT_EQ(load_cifar10(d, "test").class_names[9], "9");
}

TEST(ImageDataCifar, Cifar100FineAndCoarseLabels) {
  TempDir dir;
  write_file(dir.file("train.bin"), cifar_record({4, 99}, 0) + cifar_record({19, 0}, 1));
  std::string fine, coarse;
  for (int i = 0; i < 100; ++i) fine += "fine" + std::to_string(i) + "\r\n";
  for (int i = 0; i < 20; ++i) coarse += "coarse" + std::to_string(i) + "\n";
  write_file(dir.file("fine_label_names.txt"), fine);
  write_file(dir.file("coarse_label_names.txt"), coarse);
  const ImageDataset ds = load_image_dataset("cifar100", dir.path(), "train");
  EXPECT_EQ(as_ints(ds.labels), (std::vector<int>{99, 0}));
  EXPECT_EQ(as_ints(ds.coarse_labels), (std::vector<int>{4, 19}));
  EXPECT_EQ(ds.class_names[99], "fine99");
  EXPECT_EQ(ds.coarse_class_names[19], "coarse19");
  EXPECT_EQ(as_ints(ds.image(1)[0][1]), (std::vector<int>{2, 52, 102}));
}

TEST(ImageDataCifar, Errors) {
  TempDir dir;
  write_file(dir.file("data_batch_1.bin"), cifar_record({1}, 0) + "xyz");
  expect_error([&] { load_cifar10(dir.path(), "train"); },
               {dir.file("data_batch_1.bin"), "3076 bytes", "3073-byte records"});
  write_file(dir.file("data_batch_1.bin"), cifar_record({1}, 0) + cifar_record({10}, 0));
  expect_error([&] { load_cifar10(dir.path(), "train"); },
               {dir.file("data_batch_1.bin"), "record 1", "label 10 out of range", "[0, 10)"});
  write_file(dir.file("data_batch_1.bin"), "");
  expect_error([&] { load_cifar10(dir.path(), "train"); }, {dir.file("data_batch_1.bin"), "0 bytes"});
  expect_error([&] { load_cifar10(dir.path(), "test"); }, {dir.path(), "test_batch.bin"});
  write_file(dir.file("test_batch.bin"), cifar_record({1}, 0));
  write_file(dir.file("batches.meta.txt"), "a\nb\n");
  expect_error([&] { load_cifar10(dir.path(), "test"); }, {dir.file("batches.meta.txt"), "2 class names, expected 10"});

  TempDir empty;
  expect_error([&] { load_cifar10(empty.path(), "train"); }, {empty.path(), "data_batch_<N>.bin"});

  write_file(dir.file("test.bin"), cifar_record({1, 100}, 0));
  expect_error([&] { load_cifar100(dir.path(), "test"); },
               {dir.file("test.bin"), "record 0", "fine label 100", "[0, 100)"});
  write_file(dir.file("test.bin"), cifar_record({20, 1}, 0));
  expect_error([&] { load_cifar100(dir.path(), "test"); }, {dir.file("test.bin"), "coarse label 20", "[0, 20)"});
  write_file(dir.file("test.bin"), cifar_record({1, 1}, 0).substr(1));
  expect_error([&] { load_cifar100(dir.path(), "test"); }, {dir.file("test.bin"), "3073 bytes", "3074-byte records"});
  expect_error([&] { load_cifar100(dir.path(), "train"); }, {dir.path(), "train.bin"});
}

// ---------------------------------------------------------------- IDX (MNIST)

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string s = be32(0x803) + be32(n) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) s.push_back(static_cast<char>(i % 251));
  return s;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  return be32(0x801) + be32(static_cast<uint32_t>(labels.size())) + std::string(labels.begin(), labels.end());
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(ImageDataIdx, PlainAndGzippedFiles) {
  TempDir dir;
  write_file(dir.file("train-images-idx3-ubyte"), idx_images(3, 2, 4));
  write_file(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 0, 4}));
  write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(2, 3, 3));
  write_gzip(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels({2, 2}));

  const ImageDataset train = load_image_dataset("idx", dir.path(), "train");
  ASSERT_EQ(train.size(), 3);
  EXPECT_EQ(as_ints(train.labels), (std::vector<int>{1, 0, 4}));
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(train.image(1).sizes(), (std::vector<int64_t>{2, 4, 1}));
  EXPECT_EQ(as_ints(train.image(1).flatten()), (std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15}));

  const ImageDataset test = load_idx(dir.path(), "test");
  EXPECT_EQ(test.size(), 2);
  EXPECT_EQ(as_ints(test.image(1).flatten()), (std::vector<int>{9, 10, 11, 12, 13, 14, 15, 16, 17}));
}

TEST(ImageDataIdx, Errors) {
  TempDir dir;
  expect_error([&] { load_idx(dir.path(), "train"); }, {dir.path(), "train-images-idx3-ubyte"});
  write_file(dir.file("train-images-idx3-ubyte"), idx_images(3, 2, 2));
  write_file(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 2}));
  expect_error([&] { load_idx(dir.path(), "train"); },
               {dir.file("train-images-idx3-ubyte"), "3 images", dir.file("train-labels-idx1-ubyte"), "2 labels"});
  write_file(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 2, 3}) + "x");
  expect_error([&] { load_idx(dir.path(), "train"); }, {dir.file("train-labels-idx1-ubyte"), "12 bytes", "8 + 3"});
  std::string wrong_magic = idx_labels({1, 2, 3});
  wrong_magic[3] = 0x03;
  write_file(dir.file("train-labels-idx1-ubyte"), wrong_magic);
  expect_error([&] { load_idx(dir.path(), "train"); },
               {dir.file("train-labels-idx1-ubyte"), "magic number 0x00000803", "expected 0x00000801"});
  write_file(dir.file("train-images-idx3-ubyte"), idx_images(3, 2, 2).substr(0, 20));
  expect_error([&] { load_idx(dir.path(), "train"); }, {dir.file("train-images-idx3-ubyte"), "20 bytes", "16 + 3 x 2 x 2"});

  // A gzip stream cut short.
  TempDir gz;
  write_gzip(gz.file("t10k-images-idx3-ubyte.gz"), idx_images(50, 10, 10));
  const std::string whole = file_bytes(gz.file("t10k-images-idx3-ubyte.gz"));
  write_file(gz.file("t10k-images-idx3-ubyte.gz"), whole.substr(0, whole.size() / 2));
  write_gzip(gz.file("t10k-labels-idx1-ubyte.gz"), idx_labels(std::vector<uint8_t>(50, 1)));
  expect_error([&] { load_idx(gz.path(), "test"); }, {gz.file("t10k-images-idx3-ubyte.gz"), "truncated"});
  write_file(gz.file("t10k-images-idx3-ubyte.gz"), std::string("\x1f\x8b\x08\x00", 4) + "garbage-garbage-garbage");
  expect_error([&] { load_idx(gz.path(), "test"); }, {gz.file("t10k-images-idx3-ubyte.gz"), "gzip"});
}

// Debian's dataset-fashion-mnist package (scripts/setup.sh installs it).
const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

TEST(ImageDataIdx, FashionMnistFromDebian) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << kFashionMnistDir << " missing: apt-get install dataset-fashion-mnist (scripts/setup.sh)";
  const ImageDataset test = load_image_dataset("idx", kFashionMnistDir, "test");
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.num_classes(), 10);
  EXPECT_EQ(test.image(0).sizes(), (std::vector<int64_t>{28, 28, 1}));
  EXPECT_EQ(as_ints(test.labels.slice(0, 0, 10)), (std::vector<int>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  EXPECT_EQ(as_ints(at::bincount(test.labels)), std::vector<int>(10, 1000));
  // Values read independently (Python's gzip) from the package's files.
  EXPECT_EQ(test.image(0).sum().item<int64_t>(), 33456);
  EXPECT_EQ(as_ints(test.image(0)[14].slice(0, 10, 20).flatten()),
            (std::vector<int>{0, 0, 98, 136, 110, 109, 110, 162, 135, 144}));
  EXPECT_EQ(test.image(9999).sum().item<int64_t>(), 24390);

  const ImageDataset train = load_idx(kFashionMnistDir, "train");
  ASSERT_EQ(train.size(), 60000);
  EXPECT_EQ(as_ints(at::bincount(train.labels)), std::vector<int>(10, 6000));
  EXPECT_EQ(train.image(0).sum().item<int64_t>(), 76247);

  // Through the processor: 1 gray channel -> 3 equal channels.
  const ImageBatch b = make_image_batch(test, {0, 1, 2}, default_image_processor_config(32));
  EXPECT_EQ(b.pixel_values.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_TRUE(b.pixel_values.select(1, 0).equal(b.pixel_values.select(1, 2)));
  EXPECT_EQ(as_ints(b.labels), (std::vector<int>{9, 2, 1}));
}

// ---------------------------------------------------------------- resizing (Pillow)

TEST(ImageDataResize, BilinearShrinkIsPillowsWidenedTriangle) {
  // 4 -> 2 is not a 2 x 2 box average in Pillow: the triangle filter is stretched to support
  // 2, so output 0 (centre 1.0) reads inputs 0, 1, 2 with weights 0.75, 0.75, 0.25 (/ 1.75).
  //   [0, 100, 200, 250] -> (0 * 3 + 100 * 3 + 200) / 7 = 71.4 -> 71, (100 + 600 + 750) / 7 = 207.1 -> 207
  EXPECT_EQ(as_ints(resize_image(u8_image(1, 4, 1, {0, 100, 200, 250}), 1, 2, Resample::kBilinear)),
            (std::vector<int>{71, 207}));
  // 2-D: rows first (each rounded to uint8), then columns, weights (3, 3, 1) / 7 and (1, 3, 3) / 7.
  //   rows -> [29, 91], [39, 101], [49, 111], [59, 121]
  //   columns: (87 + 117 + 49) / 7 = 36.1, (39 + 147 + 177) / 7 = 51.9, 687 / 7 = 98.1, 797 / 7 = 113.9
  const at::Tensor a = u8_image(4, 4, 1, {0, 40, 80, 120, 10, 50, 90, 130, 20, 60, 100, 140, 30, 70, 110, 150});
  EXPECT_EQ(as_ints(resize_image(a, 2, 2, Resample::kBilinear)), (std::vector<int>{36, 98, 52, 114}));
}

TEST(ImageDataResize, BilinearUpscale) {
  // 3 -> 5: centres (o + 0.5) * 0.6 = 0.3, 0.9, 1.5, 2.1, 2.7 in input coordinates
  //   0.3: only input 0 in reach -> 0; 0.9: 0.6 * 0 + 0.4 * 90 = 36; 1.5: input 1 -> 90;
  //   2.1: 0.4 * 90 + 0.6 * 180 = 144; 2.7: only input 2 -> 180
  EXPECT_EQ(as_ints(resize_image(u8_image(1, 3, 1, {0, 90, 180}), 1, 5, Resample::kBilinear)),
            (std::vector<int>{0, 36, 90, 144, 180}));
  // Same along the height, and channel by channel.
  const at::Tensor col = u8_image(3, 1, 3, {0, 10, 7, 90, 20, 7, 180, 30, 7});
  EXPECT_EQ(as_ints(resize_image(col, 5, 1, Resample::kBilinear)),
            (std::vector<int>{0, 10, 7, 36, 14, 7, 90, 20, 7, 144, 26, 7, 180, 30, 7}));
}

TEST(ImageDataResize, BicubicClampsOvershootAndShrinks) {
  // 4 -> 8 upscale of a step: the a = -0.5 kernel undershoots next to the edge (clamped to 0)
  // and gives 255 * (0.2265625 - 0.0234375) = 51.8 -> 52 at centre 1.75.
  EXPECT_EQ(as_ints(resize_image(u8_image(1, 4, 1, {0, 0, 255, 255}), 1, 8, Resample::kBicubic)),
            (std::vector<int>{0, 0, 0, 52, 203, 255, 255, 255}));
  // 4 -> 2: support 4, taps at distances 0.25, 0.25, 0.75, 1.25 (scaled):
  //   weights 0.8671875, 0.8671875, 0.2265625, -0.0703125 (/ 1.890625)
  //   (100 * 0.8671875 + 200 * 0.2265625 - 250 * 0.0703125) / 1.890625 = 60.5 -> 61; mirrored 218.4 -> 218
  EXPECT_EQ(as_ints(resize_image(u8_image(1, 4, 1, {0, 100, 200, 250}), 1, 2, Resample::kBicubic)),
            (std::vector<int>{61, 218}));
}

TEST(ImageDataResize, NearestAndIdentity) {
  // floor((o + 0.5) * 5 / 2): inputs 1 and 3.
  EXPECT_EQ(as_ints(resize_image(u8_image(1, 5, 1, {10, 20, 30, 40, 50}), 1, 2, Resample::kNearest)),
            (std::vector<int>{20, 40}));
  const at::Tensor img = u8_image(2, 2, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  EXPECT_TRUE(resize_image(img, 2, 2, Resample::kBicubic).equal(img));
  const at::Tensor flat = at::full({5, 7, 3}, 123, at::kByte);
  EXPECT_TRUE(resize_image(flat, 3, 11, Resample::kBicubic).eq(123).all().item<bool>());
  expect_error([&] { resize_image(img, 0, 2, Resample::kBilinear); }, {"positive height and width"});
  expect_error([&] { resize_image(at::zeros({2, 2, 4}, at::kByte), 1, 1, Resample::kBilinear); },
               {"4 channels", "1 (gray) or 3 (RGB)"});
}

TEST(ImageDataResize, CenterCropAsHuggingFace) {
  // 4 x 6 -> 2 x 2: top (4 - 2) // 2 = 1, left (6 - 2) // 2 = 2.
  std::vector<int> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  EXPECT_EQ(as_ints(center_crop_image(u8_image(4, 6, 1, v), 2, 2)), (std::vector<int>{8, 9, 14, 15}));
  // 5 x 5 -> 2 x 2: top = left = 3 // 2 = 1.
  std::vector<int> w(25);
  for (int i = 0; i < 25; ++i) w[i] = i;
  EXPECT_EQ(as_ints(center_crop_image(u8_image(5, 5, 1, w), 2, 2)), (std::vector<int>{6, 7, 11, 12}));
  // 2 x 2 -> 4 x 3: padded, the image at rows 1-2 (pad ceil(2 / 2) = 1), columns 1-2 (ceil(1 / 2) = 1).
  EXPECT_EQ(as_ints(center_crop_image(u8_image(2, 2, 1, {1, 2, 3, 4}), 4, 3)),
            (std::vector<int>{0, 0, 0, 0, 1, 2, 0, 3, 4, 0, 0, 0}));
}

// ---------------------------------------------------------------- processors

TEST(ImageDataProcessor, RescaleAndNormalize) {
  ImageProcessorConfig cfg = default_image_processor_config(2);
  const at::Tensor img = u8_image(2, 2, 3, {0, 255, 51, 255, 0, 102, 0, 0, 0, 255, 255, 255});
  const at::Tensor out = preprocess_image(img, cfg);  // same size: no resampling
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  // (x / 255 - 0.5) / 0.5, channel-first.
  const std::vector<float> want = {-1, 1, -1, 1, 1, -1, -1, 1, -0.6f, -0.2f, -1, 1};
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(out.flatten()[i].item<float>(), want[i], 1e-6) << i;

  cfg.image_mean = {0.48145466f, 0.4578275f, 0.40821073f};
  cfg.image_std = {0.26862954f, 0.26130258f, 0.27577711f};
  const at::Tensor one = preprocess_image(u8_image(1, 1, 3, {128, 128, 128}), default_image_processor_config(1));
  EXPECT_NEAR(one[0][0][0].item<float>(), (128 / 255.0 - 0.5) / 0.5, 1e-6);
  const at::Tensor clip = preprocess_image(at::full({2, 2, 3}, 128, at::kByte), cfg);
  EXPECT_NEAR(clip[0][0][0].item<float>(), (128 / 255.0 - 0.48145466) / 0.26862954, 1e-5);
  EXPECT_NEAR(clip[2][1][1].item<float>(), (128 / 255.0 - 0.40821073) / 0.27577711, 1e-5);

  cfg.do_rescale = false;
  cfg.do_normalize = false;
  EXPECT_EQ(preprocess_image(img, cfg)[1][0][0].item<float>(), 255.0f);
}

TEST(ImageDataProcessor, GrayBecomesThreeIdenticalChannels) {
  const at::Tensor out = preprocess_image(u8_image(2, 2, 1, {0, 64, 128, 255}), default_image_processor_config(3));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_TRUE(out[0].equal(out[1]) && out[1].equal(out[2]));
}

TEST(ImageDataProcessor, ViTConfigFromJson) {
  const ImageProcessorConfig c = image_processor_config_from_json(R"({
    "image_processor_type": "ViTImageProcessor", "do_resize": true, "size": {"height": 32, "width": 48},
    "resample": 3, "do_rescale": true, "rescale_factor": 0.5, "do_normalize": true,
    "image_mean": [0.1, 0.2, 0.3], "image_std": 0.25, "do_center_crop": true})", "vit.json");
  EXPECT_EQ(c.processor_type, "ViTImageProcessor");
  EXPECT_EQ(c.resize_height, 32);
  EXPECT_EQ(c.resize_width, 48);
  EXPECT_EQ(c.shortest_edge, 0);
  EXPECT_EQ(c.resample, Resample::kBicubic);
  EXPECT_EQ(c.rescale_factor, 0.5);
  EXPECT_EQ(c.image_mean[2], 0.3f);
  EXPECT_EQ(c.image_std[1], 0.25f);
  EXPECT_FALSE(c.do_center_crop);  // ViT's processor has no crop: the key is not its own
  EXPECT_EQ(processor_output_size(c, 500, 375), std::make_pair(int64_t{32}, int64_t{48}));

  // An old feature-extractor config: integer size, defaults for the rest.
  const ImageProcessorConfig old = image_processor_config_from_json(
      R"({"feature_extractor_type": "ViTFeatureExtractor", "size": 224})", "old.json");
  EXPECT_EQ(old.resize_height, 224);
  EXPECT_EQ(old.resize_width, 224);
  EXPECT_EQ(old.resample, Resample::kBilinear);
  EXPECT_EQ(old.image_mean[0], 0.5f);
}

TEST(ImageDataProcessor, ClipConfigShortestEdgeThenCenterCrop) {
  const ImageProcessorConfig c = image_processor_config_from_json(R"({
    "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 224},
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": true, "do_convert_rgb": true,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3})", "clip.json");
  EXPECT_EQ(c.shortest_edge, 224);
  EXPECT_EQ(c.resample, Resample::kBicubic);
  // 375 high, 500 wide: the short side to 224, the long one int(224 * 500 / 375) = int(298.67) = 298.
  EXPECT_EQ(processor_resize_size(c, 375, 500), std::make_pair(int64_t{224}, int64_t{298}));
  EXPECT_EQ(processor_resize_size(c, 500, 375), std::make_pair(int64_t{298}, int64_t{224}));
  EXPECT_EQ(processor_output_size(c, 375, 500), std::make_pair(int64_t{224}, int64_t{224}));

  // The pipeline order on a small case: resize (bicubic, short side 2), crop 2 x 2, normalize.
  ImageProcessorConfig small = c;
  small.shortest_edge = 2;
  small.crop_height = small.crop_width = 2;
  std::vector<int> v;
  for (int i = 0; i < 4 * 6 * 3; ++i) v.push_back((i * 29) % 256);
  const at::Tensor img = u8_image(4, 6, 3, v);
  const at::Tensor resized = resize_image(img, 2, 3, Resample::kBicubic);  // int(2 * 6 / 4) = 3
  const at::Tensor cropped = center_crop_image(resized, 2, 2);           // left (3 - 2) // 2 = 0
  EXPECT_TRUE(cropped.equal(resized.slice(1, 0, 2)));
  const at::Tensor out = preprocess_image(img, small);
  const at::Tensor mean = at::tensor(std::vector<float>(c.image_mean.begin(), c.image_mean.end())).view({3, 1, 1});
  const at::Tensor stdv = at::tensor(std::vector<float>(c.image_std.begin(), c.image_std.end())).view({3, 1, 1});
  const at::Tensor want = (cropped.permute({2, 0, 1}).to(at::kFloat) / 255.0 - mean) / stdv;
  EXPECT_TRUE(at::allclose(out, want, 1e-5, 1e-5));

  const ImageProcessorConfig old = image_processor_config_from_json(
      R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 224, "crop_size": 224})", "old.json");
  EXPECT_EQ(old.shortest_edge, 224);
  EXPECT_EQ(old.crop_height, 224);
  EXPECT_TRUE(old.do_center_crop);
  EXPECT_NEAR(old.image_std[0], 0.26862954f, 1e-8);
}

TEST(ImageDataProcessor, ConfigErrorsAndDefault) {
  expect_error([] { image_processor_config_from_json(R"({"image_processor_type": "DeiTImageProcessor"})", "p.json"); },
               {"p.json", "'DeiTImageProcessor' not supported", "ViTImageProcessor, CLIPImageProcessor"});
  expect_error([] { image_processor_config_from_json(R"({"size": 3})", "p.json"); }, {"p.json", "no image_processor_type"});
  expect_error([] { image_processor_config_from_json(R"({"image_processor_type": "ViTImageProcessor", "resample": 1})", "p.json"); },
               {"p.json", "'resample'", "code 1 not supported"});
  expect_error([] { image_processor_config_from_json(R"({"image_processor_type": "ViTImageProcessor", "size": {"shortest_edge": 3}})", "p.json"); },
               {"p.json", "'size'", "fixed height and width"});
  expect_error([] { image_processor_config_from_json(R"({"image_processor_type": "CLIPImageProcessor", "image_mean": [1, 2]})", "p.json"); },
               {"p.json", "'image_mean'", "3 numbers"});
  expect_error([] { image_processor_config_from_json(R"({"image_processor_type": "CLIPImageProcessor", "do_resize": "yes"})", "p.json"); },
               {"p.json", "'do_resize'", "true or false"});
  expect_error([] { image_processor_config_from_json("{", "p.json"); }, {"p.json", "not valid JSON"});

  TempDir dir;
  expect_error([&] { load_image_processor_config(dir.path()); }, {dir.file("preprocessor_config.json"), "no such file"});
  const ImageProcessorConfig d = image_processor_for_model(dir.path(), 64);
  EXPECT_EQ(d.processor_type, "default");
  EXPECT_EQ(d.resize_height, 64);
  EXPECT_EQ(d.resize_width, 64);
  write_file(dir.file("preprocessor_config.json"), R"({"image_processor_type": "ViTImageProcessor", "size": {"height": 16, "width": 16}})");
  const ImageProcessorConfig v = image_processor_for_model(dir.path(), 64);
  EXPECT_EQ(v.processor_type, "ViTImageProcessor");
  EXPECT_EQ(v.resize_height, 16);
  EXPECT_EQ(v.source, dir.file("preprocessor_config.json"));
}

// ---------------------------------------------------------------- augmentation

TEST(ImageDataAugment, SameSeedEpochIndexSameDraw) {
  const AugmentOptions opts;
  int differ_by_epoch = 0, differ_by_index = 0, flips = 0;
  for (int64_t i = 0; i < 2000; ++i) {
    const AugmentDraw a = draw_augmentation(300, 400, opts, 7, 3, i);
    const AugmentDraw again = draw_augmentation(300, 400, opts, 7, 3, i);
    EXPECT_EQ(a.crop.top, again.crop.top);
    EXPECT_EQ(a.crop.left, again.crop.left);
    EXPECT_EQ(a.crop.height, again.crop.height);
    EXPECT_EQ(a.crop.width, again.crop.width);
    EXPECT_EQ(a.flip, again.flip);
    const AugmentDraw next_epoch = draw_augmentation(300, 400, opts, 7, 4, i);
    const AugmentDraw next_index = draw_augmentation(300, 400, opts, 7, 3, i + 1);
    differ_by_epoch += next_epoch.crop.top != a.crop.top || next_epoch.crop.height != a.crop.height;
    differ_by_index += next_index.crop.left != a.crop.left || next_index.crop.width != a.crop.width;
    flips += a.flip;
    // Inside the image, area fraction and aspect ratio within torchvision's ranges (up to rounding).
    EXPECT_TRUE(a.crop.top >= 0 && a.crop.left >= 0 && a.crop.top + a.crop.height <= 300 &&
                a.crop.left + a.crop.width <= 400);
    const double fraction = static_cast<double>(a.crop.height * a.crop.width) / (300.0 * 400.0);
    EXPECT_TRUE(fraction > 0.075 && fraction <= 1.0) << fraction;
    const double ratio = static_cast<double>(a.crop.width) / a.crop.height;
    EXPECT_TRUE(ratio > 0.70 && ratio < 1.40) << ratio;
  }
  EXPECT_GT(differ_by_epoch, 1900);
  EXPECT_GT(differ_by_index, 1900);
  EXPECT_TRUE(flips > 900 && flips < 1100) << flips;
  EXPECT_NE(draw_augmentation(300, 400, opts, 8, 3, 0).crop.top, draw_augmentation(300, 400, opts, 7, 3, 0).crop.top);
}

TEST(ImageDataAugment, FallbackIsTheCentralCropClampedToTheRatio) {
  // 1 x 100: no crop of at least 8% of the area fits one row with a ratio in [3/4, 4/3], so
  // torchvision falls back: height 1, width round(1 * 4/3) = 1, centred: left (100 - 1) // 2.
  for (int64_t i = 0; i < 20; ++i) {
    const AugmentDraw d = draw_augmentation(1, 100, AugmentOptions{}, 0, 0, i);
    EXPECT_EQ(d.crop.top, 0);
    EXPECT_EQ(d.crop.left, 49);
    EXPECT_EQ(d.crop.height, 1);
    EXPECT_EQ(d.crop.width, 1);
  }
  // 100 x 2: every candidate is at least 3 wide; the fallback keeps the width and clamps the
  // height to round(2 / (3/4)) = 3, centred: top (100 - 3) // 2 = 48.
  const AugmentDraw tall = draw_augmentation(100, 2, AugmentOptions{}, 0, 0, 0);
  EXPECT_EQ(tall.crop.width, 2);
  EXPECT_EQ(tall.crop.height, 3);
  EXPECT_EQ(tall.crop.top, 48);
  EXPECT_EQ(tall.crop.left, 0);
}

TEST(ImageDataAugment, WholeImageWithFlipIsTheMirroredPreprocess) {
  std::vector<int> v;
  for (int i = 0; i < 4 * 4 * 3; ++i) v.push_back((i * 53) % 256);
  const at::Tensor img = u8_image(4, 4, 3, v);
  const ImageProcessorConfig cfg = default_image_processor_config(4);
  AugmentOptions whole;
  whole.scale = {1.0, 1.0};
  whole.ratio = {1.0, 1.0};
  whole.flip_probability = 1.0;
  const at::Tensor out = augment_image(img, cfg, whole, 1, 2, 3);
  EXPECT_TRUE(out.equal(preprocess_image(img.flip({1}), cfg)));
  whole.flip_probability = 0.0;
  EXPECT_TRUE(augment_image(img, cfg, whole, 1, 2, 3).equal(preprocess_image(img, cfg)));
}

TEST(ImageDataAugment, ReproducibleImagesDifferentEpoch) {
  std::vector<int> v;
  for (int i = 0; i < 40 * 30 * 3; ++i) v.push_back((i * 7919) % 256);
  const at::Tensor img = u8_image(40, 30, 3, v);
  const ImageProcessorConfig cfg = default_image_processor_config(16);
  const at::Tensor a = augment_image(img, cfg, AugmentOptions{}, 42, 0, 5);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_TRUE(a.equal(augment_image(img, cfg, AugmentOptions{}, 42, 0, 5)));
  EXPECT_FALSE(a.equal(augment_image(img, cfg, AugmentOptions{}, 42, 1, 5)));
}

// ---------------------------------------------------------------- batching

ImageDataset small_cifar(const TempDir& dir) {
  std::string batch;
  for (int i = 0; i < 6; ++i) batch += cifar_record({static_cast<uint8_t>(i % 10)}, i * 13);
  write_file(dir.file("test_batch.bin"), batch);
  return load_cifar10(dir.path(), "test");
}

TEST(ImageDataBatch, ShapesDtypesAndPerExampleAgreement) {
  TempDir dir;
  const ImageDataset ds = small_cifar(dir);
  ImageProcessorConfig cfg = default_image_processor_config(16);
  const std::vector<int64_t> idx = {4, 0, 5};
  const ImageBatch b = make_image_batch(ds, idx, cfg);
  EXPECT_EQ(b.pixel_values.sizes(), (std::vector<int64_t>{3, 3, 16, 16}));
  EXPECT_EQ(b.pixel_values.scalar_type(), at::kFloat);
  EXPECT_EQ(b.labels.scalar_type(), at::kLong);
  EXPECT_EQ(as_ints(b.labels), (std::vector<int>{4, 0, 5}));
  for (size_t k = 0; k < idx.size(); ++k) EXPECT_TRUE(b.pixel_values[k].equal(preprocess_image(ds.image(idx[k]), cfg)));

  ImageBatchOptions train;
  train.train = true;
  train.seed = 9;
  train.epoch = 2;
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  const ImageBatch t = make_image_batch(ds, idx, cfg, train);
  at::set_num_threads(threads);
  train.parallel = false;
  EXPECT_TRUE(t.pixel_values.equal(make_image_batch(ds, idx, cfg, train).pixel_values));
  // The same example gets the same augmentation in another batch composition.
  EXPECT_TRUE(t.pixel_values[1].equal(make_image_batch(ds, {3, 0}, cfg, train).pixel_values[1]));
  EXPECT_TRUE(t.pixel_values[2].equal(augment_image(ds.image(5), cfg, train.augment, 9, 2, 5)));
  train.epoch = 3;
  EXPECT_FALSE(t.pixel_values.equal(make_image_batch(ds, idx, cfg, train).pixel_values));

  expect_error([&] { make_image_batch(ds, {0, 6}, cfg); }, {"example index 6 out of range", "6 examples"});
  expect_error([&] { make_image_batch(ds, {}, cfg); }, {"at least one"});
}

TEST(ImageDataBatch, DifferentSizesAreRefusedWithoutAFixedSize) {
  TempDir dir;
  fs::create_directories(dir.file("a"));
  write_rgb_png(dir.file("a/1.png"), 2, 3, std::vector<uint8_t>(18, 1));
  write_rgb_png(dir.file("a/2.png"), 3, 3, std::vector<uint8_t>(27, 2));
  const ImageDataset ds = load_image_folder(dir.path(), "train");
  ImageProcessorConfig cfg = default_image_processor_config(4);
  cfg.do_resize = false;
  expect_error([&] { make_image_batch(ds, {0, 1}, cfg); }, {"example 0 becomes 2 x 3", "example 1 becomes 3 x 3"});
  cfg.do_resize = true;
  EXPECT_EQ(make_image_batch(ds, {0, 1}, cfg).pixel_values.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
}

}  // namespace
}  // namespace ot
