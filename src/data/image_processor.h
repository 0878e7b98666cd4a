// data/image_processor.h: images of an ImageDataset (data/image_datasets.h) turned into a
// model's pixel_values as a Hugging Face image processor does, training augmentation, and
// batching.
//
// Preprocessing (preprocess_image) follows transformers' slow (PIL-based) processors, read
// from a checkpoint's preprocessor_config.json:
//   ViTImageProcessor  resize to size {height, width} -> rescale -> normalize
//   CLIPImageProcessor resize so the shorter side is size {shortest_edge} (the longer one
//                      int(shortest_edge * long / short), as HF computes it) -> center crop
//                      to crop_size -> rescale -> normalize
// (and their older *FeatureExtractor names, with an integer size / crop_size). Without a
// preprocessor_config.json, default_image_processor_config resizes to the model's square
// image size and normalizes with the given mean / std.
//
// What matches transformers + Pillow, value for value:
//   resize  Pillow's Image.resize on 8-bit images: separable, horizontal pass then vertical,
//           triangle (bilinear, support 1) or cubic (bicubic, a = -0.5, support 2) filter
//           stretched by the downscale factor (so shrinking is antialiased), pixel centres at
//           +0.5, weights normalised per output pixel and turned into 22-bit fixed point, each
//           pass rounded and clamped to 0..255; a pass whose size does not change is
//           skipped; nearest picks floor((x + 0.5) * in / out) as Pillow's affine scale does.
//           For RGB and gray uint8 inputs this is Pillow's arithmetic, so the pixels agree
//           exactly (within one grey level at worst, where Pillow's float box coordinates
//           would round differently, which needs sizes above 2^24).
//   crop    HF center_crop: top = (h - crop_h) // 2, left likewise (floor division), and when
//           the image is smaller than the crop it is zero-padded first (top pad
//           ceil((crop_h - h) / 2)), the zeros being black pixels before rescaling.
//   rescale float32(double(pixel) * rescale_factor); normalize (x - mean) / std in float32:
//           numpy's arithmetic in HF's rescale / normalize.
// What does not: HF's "fast" (torchvision tensor) processors, other processor types
// (DeiT, BiT, ConvNeXt crop_pct, ...: refused by name), LANCZOS / BOX / HAMMING resampling
// (refused), and 16-bit gray PNGs (see data/image_decode.h). Gray (1-channel) images become 3
// identical channels, as do_convert_rgb would make them.
//
// Augmentation (training) is torchvision's RandomResizedCrop (scale (0.08, 1), ratio
// (3/4, 4/3), 10 attempts, then the central crop clamped to the ratio range) to the
// processor's output size with bilinear resampling, then RandomHorizontalFlip (p = 0.5), then
// the processor's rescale + normalize: HF's run_image_classification training transform. Its
// random numbers come from (seed, epoch, example index) alone, not from a global generator:
// the same example in the same epoch gets the same crop and flip on every rank, in every
// batch composition and after a resume (not the numbers torch's generator would draw).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/image_datasets.h"

namespace ot {

// PIL's resampling codes, as preprocessor_config.json stores them.
enum class Resample : int { kNearest = 0, kBilinear = 2, kBicubic = 3 };

struct ImageProcessorConfig {
  std::string processor_type = "default";  // ViTImageProcessor | CLIPImageProcessor | default
  std::string source;                      // the preprocessor_config.json read ("" for a default)
  bool do_convert_rgb = true;              // gray inputs always become 3 channels here
  bool do_resize = true;
  int64_t shortest_edge = 0;               // > 0: size {shortest_edge}, aspect ratio kept
  int64_t resize_height = 224;             // size {height, width}, when shortest_edge == 0
  int64_t resize_width = 224;
  Resample resample = Resample::kBilinear;
  bool do_center_crop = false;
  int64_t crop_height = 224;
  int64_t crop_width = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};  // float32, as HF's normalize casts them
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
};

// Parses preprocessor_config.json text; `name` (the file) starts every error message.
ImageProcessorConfig image_processor_config_from_json(const std::string& json_text, const std::string& name);
// `path` is the JSON file or a checkpoint folder holding preprocessor_config.json.
ImageProcessorConfig load_image_processor_config(const std::string& path);
// No preprocessor_config.json: resize to image_size x image_size (bilinear), rescale by
// 1/255, normalize with mean / std (ViT's defaults: 0.5 each).
ImageProcessorConfig default_image_processor_config(int64_t image_size,
                                                    std::array<float, 3> mean = {0.5f, 0.5f, 0.5f},
                                                    std::array<float, 3> std = {0.5f, 0.5f, 0.5f});
// The checkpoint's preprocessor_config.json when `model_dir` has one, else the default.
ImageProcessorConfig image_processor_for_model(const std::string& model_dir, int64_t image_size);

// (height, width) after the processor's resize (the input size when do_resize is off), and
// after resize and center crop: the size of preprocess_image's output.
std::pair<int64_t, int64_t> processor_resize_size(const ImageProcessorConfig& cfg, int64_t height, int64_t width);
std::pair<int64_t, int64_t> processor_output_size(const ImageProcessorConfig& cfg, int64_t height, int64_t width);

// (H, W, C) uint8 -> (height, width, C) uint8, Pillow's Image.resize (see above).
at::Tensor resize_image(const at::Tensor& image, int64_t height, int64_t width, Resample resample);
// (H, W, C) uint8 -> (height, width, C) uint8, HF's center_crop (zero padding when smaller).
at::Tensor center_crop_image(const at::Tensor& image, int64_t height, int64_t width);
// (H, W, C) uint8, C = 1 or 3 -> (3, H', W') float32: resize, crop, rescale, normalize.
at::Tensor preprocess_image(const at::Tensor& image, const ImageProcessorConfig& cfg);

struct AugmentOptions {
  std::array<double, 2> scale{0.08, 1.0};             // of the image's area
  std::array<double, 2> ratio{3.0 / 4.0, 4.0 / 3.0};  // width / height
  double flip_probability = 0.5;
  Resample resample = Resample::kBilinear;            // torchvision's default
};

struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};

struct AugmentDraw {
  CropBox crop;
  bool flip = false;
};

// RandomResizedCrop.get_params + the flip coin for a height x width image, from the random
// stream of (seed, epoch, index).
AugmentDraw draw_augmentation(int64_t height, int64_t width, const AugmentOptions& opts, uint64_t seed,
                              int64_t epoch, int64_t index);
// The size augmentation crops to: the processor's crop size when it center-crops, else its
// size {height, width}, else shortest_edge x shortest_edge.
std::pair<int64_t, int64_t> augment_output_size(const ImageProcessorConfig& cfg);
// (H, W, C) uint8 -> (3, H', W') float32: crop + resize, flip, then cfg's rescale + normalize.
at::Tensor augment_image(const at::Tensor& image, const ImageProcessorConfig& cfg, const AugmentOptions& opts,
                         uint64_t seed, int64_t epoch, int64_t index);

struct ImageBatch {
  at::Tensor pixel_values;  // (B, 3, H, W) float32
  at::Tensor labels;        // (B) int64
};

struct ImageBatchOptions {
  bool train = false;  // augment (training) instead of the processor's resize + crop
  AugmentOptions augment;
  uint64_t seed = 0;
  int64_t epoch = 0;
  bool parallel = true;  // examples spread over at::parallel_for's threads
};

// The examples `indices` of `ds` as one batch. Every example must come out the same size
// (always so with augmentation, a size {height, width} or a center crop); otherwise the
// error names two examples and their sizes.
ImageBatch make_image_batch(const ImageDataset& ds, const std::vector<int64_t>& indices,
                            const ImageProcessorConfig& cfg, const ImageBatchOptions& opts = {});

}  // namespace ot
