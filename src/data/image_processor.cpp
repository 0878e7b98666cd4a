// data/image_processor.cpp: see image_processor.h. The pixel work runs on raw (H, W, C)
// uint8 buffers so that make_image_batch can run it on several threads without making
// tensors there; the tensor functions are thin wrappers. Compiled with OpenMP (CMakeLists.txt)
// so that at::parallel_for really spreads a batch over threads.
#include "data/image_processor.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using json = nlohmann::json;

// An (height, width, channels) uint8 image, row-major.
struct Pixels {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> data;
};

// A read-only (height, width, channels) uint8 image somewhere in memory, row-major.
struct PixelView {
  const uint8_t* data = nullptr;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
};

PixelView view_of(const Pixels& p) { return {p.data.data(), p.height, p.width, p.channels}; }

// ---------------------------------------------------------------- Pillow's resampling

double triangle_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double cubic_filter(double x) {  // Keys' cubic with a = -0.5, as Pillow's BICUBIC
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's fixed point for 8-bit images

// The taps of one axis: output pixel o reads `count[o]` inputs from `first[o]` on, with
// weights weights[o * taps ...] in 22-bit fixed point.
struct AxisTaps {
  int64_t taps = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

AxisTaps pillow_axis_taps(int64_t in_size, int64_t out_size, Resample resample) {
  const bool cubic = resample == Resample::kBicubic;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filter_scale = std::max(scale, 1.0);  // shrinking widens the filter: antialiasing
  const double inverse_filter_scale = 1.0 / filter_scale;  // multiplied, as Pillow does: same rounding
  const double support = (cubic ? 2.0 : 1.0) * filter_scale;
  AxisTaps t;
  t.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size * t.taps), 0);
  std::vector<double> w(static_cast<size_t>(t.taps));
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    // Pillow rounds the bounds with a cast to int (truncation toward zero).
    const int64_t lo = std::max<int64_t>(static_cast<int>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int>(center + support + 0.5), in_size);
    const int64_t n = hi - lo;
    TORCH_INTERNAL_ASSERT(n >= 1 && n <= t.taps);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = (static_cast<double>(i + lo) - center + 0.5) * inverse_filter_scale;
      w[i] = cubic ? cubic_filter(x) : triangle_filter(x);
      total += w[i];
    }
    for (int64_t i = 0; i < n; ++i) {
      const double normalised = total != 0.0 ? w[i] / total : w[i];
      const double fixed = normalised * (1 << kPrecisionBits);
      t.weights[o * t.taps + i] = static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    t.first[o] = lo;
    t.count[o] = n;
  }
  return t;
}

inline uint8_t round_fixed_to_u8(int64_t sum) {
  const int64_t v = sum >> kPrecisionBits;  // floor; the 0.5 was added up front
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One pass along the width: (H, W, C) -> (H, out_width, C).
Pixels resample_rows(const PixelView& in, int64_t out_width, Resample resample) {
  const AxisTaps t = pillow_axis_taps(in.width, out_width, resample);
  const int64_t C = in.channels;
  Pixels out{in.height, out_width, C, std::vector<uint8_t>(static_cast<size_t>(in.height * out_width * C))};
  for (int64_t y = 0; y < in.height; ++y) {
    const uint8_t* row = in.data + y * in.width * C;
    uint8_t* dst = out.data.data() + y * out_width * C;
    for (int64_t o = 0; o < out_width; ++o) {
      const int32_t* k = &t.weights[o * t.taps];
      const uint8_t* src = row + t.first[o] * C;
      for (int64_t c = 0; c < C; ++c) {
        int64_t sum = int64_t{1} << (kPrecisionBits - 1);
        for (int64_t i = 0; i < t.count[o]; ++i) sum += int64_t{src[i * C + c]} * k[i];
        dst[o * C + c] = round_fixed_to_u8(sum);
      }
    }
  }
  return out;
}

// One pass along the height: (H, W, C) -> (out_height, W, C).
Pixels resample_columns(const PixelView& in, int64_t out_height, Resample resample) {
  const AxisTaps t = pillow_axis_taps(in.height, out_height, resample);
  const int64_t row_len = in.width * in.channels;
  Pixels out{out_height, in.width, in.channels, std::vector<uint8_t>(static_cast<size_t>(out_height * row_len))};
  std::vector<int64_t> sum(static_cast<size_t>(row_len));
  for (int64_t o = 0; o < out_height; ++o) {
    std::fill(sum.begin(), sum.end(), int64_t{1} << (kPrecisionBits - 1));
    for (int64_t i = 0; i < t.count[o]; ++i) {
      const int64_t k = t.weights[o * t.taps + i];
      const uint8_t* src = in.data + (t.first[o] + i) * row_len;
      for (int64_t j = 0; j < row_len; ++j) sum[j] += int64_t{src[j]} * k;
    }
    uint8_t* dst = out.data.data() + o * row_len;
    for (int64_t j = 0; j < row_len; ++j) dst[j] = round_fixed_to_u8(sum[j]);
  }
  return out;
}

// Pillow's NEAREST resize (an affine scale): source index floor((o + 0.5) * in / out),
// accumulated step by step as Pillow does.
Pixels resize_nearest(const PixelView& in, int64_t out_height, int64_t out_width) {
  auto source_indices = [](int64_t in_size, int64_t out_size) {
    std::vector<int64_t> idx(static_cast<size_t>(out_size));
    const double step = static_cast<double>(in_size) / static_cast<double>(out_size);
    double pos = step * 0.5;
    for (int64_t o = 0; o < out_size; ++o, pos += step) idx[o] = std::min<int64_t>(static_cast<int64_t>(pos), in_size - 1);
    return idx;
  };
  const std::vector<int64_t> ys = source_indices(in.height, out_height), xs = source_indices(in.width, out_width);
  const int64_t C = in.channels;
  Pixels out{out_height, out_width, C, std::vector<uint8_t>(static_cast<size_t>(out_height * out_width * C))};
  for (int64_t y = 0; y < out_height; ++y)
    for (int64_t x = 0; x < out_width; ++x)
      std::memcpy(&out.data[(y * out_width + x) * C], in.data + (ys[y] * in.width + xs[x]) * C, static_cast<size_t>(C));
  return out;
}

Pixels copy_pixels(const PixelView& in) {
  return {in.height, in.width, in.channels,
          std::vector<uint8_t>(in.data, in.data + in.height * in.width * in.channels)};
}

Pixels resize_pixels(const PixelView& in, int64_t out_height, int64_t out_width, Resample resample) {
  OT_REQUIRE(out_height > 0 && out_width > 0, "resize to ", out_height, " x ", out_width,
             ": expected a positive height and width");
  if (resample == Resample::kNearest) {
    if (out_height == in.height && out_width == in.width) return copy_pixels(in);
    return resize_nearest(in, out_height, out_width);
  }
  // Horizontal first, then vertical; an axis whose size does not change is not filtered.
  Pixels rows = out_width != in.width ? resample_rows(in, out_width, resample) : copy_pixels(in);
  if (out_height == in.height) return rows;
  return resample_columns(view_of(rows), out_height, resample);
}

// ---------------------------------------------------------------- crops, flips

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Pixels crop_pixels(const PixelView& in, const CropBox& box) {
  TORCH_INTERNAL_ASSERT(box.top >= 0 && box.left >= 0 && box.top + box.height <= in.height &&
                        box.left + box.width <= in.width);
  const int64_t C = in.channels;
  Pixels out{box.height, box.width, C, std::vector<uint8_t>(static_cast<size_t>(box.height * box.width * C))};
  for (int64_t y = 0; y < box.height; ++y)
    std::memcpy(&out.data[y * box.width * C], in.data + ((box.top + y) * in.width + box.left) * C,
                static_cast<size_t>(box.width * C));
  return out;
}

// HF's center_crop: the window (h - crop_h) // 2 from the top (floor division); an image
// smaller than the window is first centred on a zero canvas (top pad ceil((crop_h - h) / 2)).
Pixels center_crop_pixels(const PixelView& in, int64_t crop_height, int64_t crop_width) {
  OT_REQUIRE(crop_height > 0 && crop_width > 0, "center crop to ", crop_height, " x ", crop_width,
             ": expected a positive height and width");
  const int64_t top = floor_div(in.height - crop_height, 2), left = floor_div(in.width - crop_width, 2);
  if (top >= 0 && left >= 0 && top + crop_height <= in.height && left + crop_width <= in.width)
    return crop_pixels(in, {top, left, crop_height, crop_width});
  const int64_t canvas_h = std::max(crop_height, in.height), canvas_w = std::max(crop_width, in.width);
  const int64_t pad_top = (canvas_h - in.height + 1) / 2, pad_left = (canvas_w - in.width + 1) / 2;
  const int64_t C = in.channels;
  Pixels canvas{canvas_h, canvas_w, C, std::vector<uint8_t>(static_cast<size_t>(canvas_h * canvas_w * C), 0)};
  for (int64_t y = 0; y < in.height; ++y)
    std::memcpy(&canvas.data[((pad_top + y) * canvas_w + pad_left) * C], in.data + y * in.width * C,
                static_cast<size_t>(in.width * C));
  const int64_t t = std::max<int64_t>(top + pad_top, 0), l = std::max<int64_t>(left + pad_left, 0);
  const int64_t b = std::min(top + pad_top + crop_height, canvas_h), r = std::min(left + pad_left + crop_width, canvas_w);
  return crop_pixels(view_of(canvas), {t, l, b - t, r - l});
}

void flip_horizontally(Pixels* p) {
  const int64_t C = p->channels;
  for (int64_t y = 0; y < p->height; ++y) {
    uint8_t* row = &p->data[y * p->width * C];
    for (int64_t a = 0, b = p->width - 1; a < b; ++a, --b)
      for (int64_t c = 0; c < C; ++c) std::swap(row[a * C + c], row[b * C + c]);
  }
}

// (H, W, C) uint8 -> (3, H, W) float32 at `out`: HF's rescale (float64 product cast to float32)
// and normalize (float32 arithmetic); a gray channel feeds all three.
void rescale_normalize_into(const PixelView& in, const ImageProcessorConfig& cfg, float* out) {
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      float x = cfg.do_rescale ? static_cast<float>(static_cast<double>(v) * cfg.rescale_factor) : static_cast<float>(v);
      if (cfg.do_normalize) x = (x - cfg.image_mean[c]) / cfg.image_std[c];
      table[c][v] = x;
    }
  const int64_t plane = in.height * in.width;
  for (int64_t c = 0; c < 3; ++c) {
    const int64_t src_c = in.channels == 1 ? 0 : c;
    float* dst = out + c * plane;
    for (int64_t i = 0; i < plane; ++i) dst[i] = table[c][in.data[i * in.channels + src_c]];
  }
}

void require_image_channels(int64_t channels, const char* what) {
  OT_REQUIRE(channels == 1 || channels == 3, what, ": image with ", channels,
             " channels, expected 1 (gray) or 3 (RGB)");
}

// The processor's resize, center crop, rescale and normalize.
void preprocess_into(const PixelView& in, const ImageProcessorConfig& cfg, float* out) {
  Pixels p;
  PixelView current = in;  // the input itself while neither resize nor crop applies
  if (cfg.do_resize) {
    const auto [h, w] = processor_resize_size(cfg, in.height, in.width);
    p = resize_pixels(current, h, w, cfg.resample);
    current = view_of(p);
  }
  if (cfg.do_center_crop) {
    p = center_crop_pixels(current, cfg.crop_height, cfg.crop_width);
    current = view_of(p);
  }
  rescale_normalize_into(current, cfg, out);
}

void augment_into(const PixelView& in, const ImageProcessorConfig& cfg, const AugmentOptions& opts, uint64_t seed,
                  int64_t epoch, int64_t index, float* out) {
  const AugmentDraw draw = draw_augmentation(in.height, in.width, opts, seed, epoch, index);
  const auto [h, w] = augment_output_size(cfg);
  Pixels p = resize_pixels(view_of(crop_pixels(in, draw.crop)), h, w, opts.resample);
  if (draw.flip) flip_horizontally(&p);
  rescale_normalize_into(view_of(p), cfg, out);
}

PixelView view_of_tensor(const at::Tensor& image, const char* what) {
  OT_REQUIRE(image.dim() == 3 && image.scalar_type() == at::kByte && image.device().is_cpu(), what,
             ": expected a (H, W, C) uint8 CPU tensor, got ", image.sizes(), " ", image.scalar_type());
  OT_REQUIRE(image.size(0) > 0 && image.size(1) > 0, what, ": empty image ", image.sizes());
  require_image_channels(image.size(2), what);
  return {image.data_ptr<uint8_t>(), image.size(0), image.size(1), image.size(2)};
}

at::Tensor to_tensor(Pixels p) {
  at::Tensor t = at::empty({p.height, p.width, p.channels}, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), p.data.data(), p.data.size());
  return t;
}

// ---------------------------------------------------------------- random stream

// SplitMix64's output function: a strong 64-bit mix.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A SplitMix64 stream keyed by (seed, epoch, index) and nothing else.
class ExampleRandom {
 public:
  ExampleRandom(uint64_t seed, int64_t epoch, int64_t index)
      : state_(mix64(mix64(mix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index))) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  double uniform(double lo, double hi) {  // [lo, hi)
    return lo + (hi - lo) * (static_cast<double>(next() >> 11) * 0x1.0p-53);
  }
  int64_t below(int64_t n) {  // [0, n)
    return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------- config JSON

bool json_bool(const json& j, const char* key, bool fallback, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  OT_REQUIRE(it->is_boolean(), name, ": key '", key, "': expected true or false, got ", it->type_name());
  return it->get<bool>();
}

double json_number(const json& j, const char* key, double fallback, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  OT_REQUIRE(it->is_number(), name, ": key '", key, "': expected a number, got ", it->type_name());
  return it->get<double>();
}

int64_t positive_int(const json& v, const std::string& key, const std::string& name) {
  OT_REQUIRE(v.is_number_integer() && v.get<int64_t>() > 0, name, ": key '", key,
             "': expected a positive integer, got ", v.dump());
  return v.get<int64_t>();
}

// mean / std: three numbers, or one for all channels (HF accepts both).
std::array<float, 3> json_triple(const json& j, const char* key, std::array<float, 3> fallback, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number()) {
    const float v = static_cast<float>(it->get<double>());
    return {v, v, v};
  }
  OT_REQUIRE(it->is_array() && it->size() == 3 && std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_number(); }),
             name, ": key '", key, "': expected 3 numbers (one per RGB channel), got ", it->dump());
  return {static_cast<float>((*it)[0].get<double>()), static_cast<float>((*it)[1].get<double>()),
          static_cast<float>((*it)[2].get<double>())};
}

// size / crop_size: an integer or {height, width}; size may also be {shortest_edge}.
void read_size(const json& j, const char* key, bool allow_shortest_edge, bool integer_is_shortest_edge,
               int64_t* shortest_edge, int64_t* height, int64_t* width, const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (it->is_number_integer()) {
    const int64_t s = positive_int(*it, key, name);
    if (integer_is_shortest_edge) {
      *shortest_edge = s;
    } else {
      *height = *width = s;
      if (shortest_edge) *shortest_edge = 0;
    }
    return;
  }
  const std::string what = allow_shortest_edge ? "{\"height\", \"width\"} or {\"shortest_edge\"}" : "{\"height\", \"width\"}";
  OT_REQUIRE(it->is_object(), name, ": key '", key, "': expected an integer or ", what, ", got ", it->dump());
  if (it->contains("height") || it->contains("width")) {
    OT_REQUIRE(it->contains("height") && it->contains("width") && it->size() == 2, name, ": key '", key,
               "': expected ", what, ", got ", it->dump());
    *height = positive_int((*it)["height"], std::string(key) + ".height", name);
    *width = positive_int((*it)["width"], std::string(key) + ".width", name);
    if (shortest_edge) *shortest_edge = 0;
    return;
  }
  OT_REQUIRE(allow_shortest_edge && it->contains("shortest_edge") && it->size() == 1, name, ": key '", key,
             "': expected ", what, ", got ", it->dump(),
             allow_shortest_edge ? "" : " (this processor type resizes to a fixed height and width)");
  *shortest_edge = positive_int((*it)["shortest_edge"], std::string(key) + ".shortest_edge", name);
}

ImageProcessorConfig vit_defaults() {
  ImageProcessorConfig c;
  c.processor_type = "ViTImageProcessor";
  return c;  // size 224 x 224, bilinear, 1/255, mean = std = 0.5
}

ImageProcessorConfig clip_defaults() {
  ImageProcessorConfig c;
  c.processor_type = "CLIPImageProcessor";
  c.shortest_edge = 224;
  c.resample = Resample::kBicubic;
  c.do_center_crop = true;
  c.crop_height = c.crop_width = 224;
  c.image_mean = {0.48145466f, 0.4578275f, 0.40821073f};  // OpenAI CLIP's
  c.image_std = {0.26862954f, 0.26130258f, 0.27577711f};
  return c;
}

}  // namespace

// ---------------------------------------------------------------- configs

ImageProcessorConfig image_processor_config_from_json(const std::string& json_text, const std::string& name) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(name, ": not valid JSON (", e.what(), ")");
  }
  OT_REQUIRE(j.is_object(), name, ": expected a JSON object, got ", j.type_name());
  std::string type;
  for (const char* key : {"image_processor_type", "feature_extractor_type"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) {
      type = it->get<std::string>();
      break;
    }
  }
  const bool vit = type == "ViTImageProcessor" || type == "ViTFeatureExtractor";
  const bool clip = type == "CLIPImageProcessor" || type == "CLIPFeatureExtractor";
  OT_REQUIRE(vit || clip, name, ": image processor type '", type.empty() ? "(no image_processor_type)" : type,
             "' not supported; supported: ViTImageProcessor, CLIPImageProcessor (or their *FeatureExtractor names)");

  ImageProcessorConfig c = vit ? vit_defaults() : clip_defaults();
  c.source = name;
  c.do_resize = json_bool(j, "do_resize", c.do_resize, name);
  if (vit) {
    read_size(j, "size", false, false, nullptr, &c.resize_height, &c.resize_width, name);
  } else {
    read_size(j, "size", true, true, &c.shortest_edge, &c.resize_height, &c.resize_width, name);
    c.do_center_crop = json_bool(j, "do_center_crop", c.do_center_crop, name);
    read_size(j, "crop_size", false, false, nullptr, &c.crop_height, &c.crop_width, name);
  }
  auto it = j.find("resample");
  if (it != j.end() && !it->is_null()) {
    OT_REQUIRE(it->is_number_integer(), name, ": key 'resample': expected a PIL resampling code, got ", it->dump());
    const int64_t r = it->get<int64_t>();
    OT_REQUIRE(r == 0 || r == 2 || r == 3, name, ": key 'resample': PIL code ", r,
               " not supported; supported: 0 (nearest), 2 (bilinear), 3 (bicubic)");
    c.resample = static_cast<Resample>(r);
  }
  c.do_rescale = json_bool(j, "do_rescale", c.do_rescale, name);
  c.rescale_factor = json_number(j, "rescale_factor", c.rescale_factor, name);
  c.do_normalize = json_bool(j, "do_normalize", c.do_normalize, name);
  c.image_mean = json_triple(j, "image_mean", c.image_mean, name);
  c.image_std = json_triple(j, "image_std", c.image_std, name);
  for (int k = 0; k < 3; ++k)
    OT_REQUIRE(!c.do_normalize || c.image_std[k] != 0.0f, name, ": key 'image_std': channel ", k,
               " is 0, expected a non-zero standard deviation");
  c.do_convert_rgb = json_bool(j, "do_convert_rgb", c.do_convert_rgb, name);
  return c;
}

ImageProcessorConfig load_image_processor_config(const std::string& path) {
  const std::string file = dir_exists(path) ? path_join(path, "preprocessor_config.json") : path;
  OT_REQUIRE(file_exists(file), file, ": no such file; expected a Hugging Face preprocessor_config.json");
  return image_processor_config_from_json(read_text_file(file), file);
}

ImageProcessorConfig default_image_processor_config(int64_t image_size, std::array<float, 3> mean,
                                                    std::array<float, 3> std) {
  OT_REQUIRE(image_size > 0, "image size ", image_size, ": expected a positive number of pixels");
  ImageProcessorConfig c;
  c.resize_height = c.resize_width = image_size;
  c.crop_height = c.crop_width = image_size;
  c.image_mean = mean;
  c.image_std = std;
  return c;
}

ImageProcessorConfig image_processor_for_model(const std::string& model_dir, int64_t image_size) {
  const std::string file = path_join(model_dir, "preprocessor_config.json");
  return file_exists(file) ? load_image_processor_config(file) : default_image_processor_config(image_size);
}

std::pair<int64_t, int64_t> processor_resize_size(const ImageProcessorConfig& cfg, int64_t height, int64_t width) {
  if (!cfg.do_resize) return {height, width};
  if (cfg.shortest_edge <= 0) return {cfg.resize_height, cfg.resize_width};
  // HF get_resize_output_image_size(default_to_square=False): int() of the longer side.
  const int64_t short_side = std::min(height, width), long_side = std::max(height, width);
  const auto new_long = static_cast<int64_t>(static_cast<double>(cfg.shortest_edge * long_side) /
                                             static_cast<double>(short_side));
  return width <= height ? std::make_pair(new_long, cfg.shortest_edge) : std::make_pair(cfg.shortest_edge, new_long);
}

std::pair<int64_t, int64_t> processor_output_size(const ImageProcessorConfig& cfg, int64_t height, int64_t width) {
  if (cfg.do_center_crop) return {cfg.crop_height, cfg.crop_width};
  return processor_resize_size(cfg, height, width);
}

// ---------------------------------------------------------------- tensor functions

at::Tensor resize_image(const at::Tensor& image, int64_t height, int64_t width, Resample resample) {
  const at::Tensor in = image.contiguous();
  return to_tensor(resize_pixels(view_of_tensor(in, "resize_image"), height, width, resample));
}

at::Tensor center_crop_image(const at::Tensor& image, int64_t height, int64_t width) {
  const at::Tensor in = image.contiguous();
  return to_tensor(center_crop_pixels(view_of_tensor(in, "center_crop_image"), height, width));
}

at::Tensor preprocess_image(const at::Tensor& image, const ImageProcessorConfig& cfg) {
  const at::Tensor in = image.contiguous();
  const PixelView v = view_of_tensor(in, "preprocess_image");
  const auto [h, w] = processor_output_size(cfg, v.height, v.width);
  at::Tensor out = at::empty({3, h, w}, at::kFloat);
  preprocess_into(v, cfg, out.data_ptr<float>());
  return out;
}

// ---------------------------------------------------------------- augmentation

AugmentDraw draw_augmentation(int64_t height, int64_t width, const AugmentOptions& opts, uint64_t seed,
                              int64_t epoch, int64_t index) {
  OT_REQUIRE(height > 0 && width > 0, "augmentation of a ", height, " x ", width, " image: expected a non-empty image");
  OT_REQUIRE(opts.scale[0] > 0 && opts.scale[0] <= opts.scale[1] && opts.ratio[0] > 0 && opts.ratio[0] <= opts.ratio[1],
             "augmentation scale (", opts.scale[0], ", ", opts.scale[1], ") and ratio (", opts.ratio[0], ", ",
             opts.ratio[1], "): expected 0 < low <= high for both");
  ExampleRandom rng(seed, epoch, index);
  AugmentDraw d;
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(opts.ratio[0]), log_hi = std::log(opts.ratio[1]);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target_area = area * rng.uniform(opts.scale[0], opts.scale[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Python's round(): half to even, which nearbyint does in the default rounding mode.
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      d.crop = {rng.below(height - h + 1), rng.below(width - w + 1), h, w};
      found = true;
    }
  }
  if (!found) {  // torchvision's fallback: the whole image, clamped to the ratio range, centred
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    int64_t w = width, h = height;
    if (in_ratio < opts.ratio[0]) {
      h = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / opts.ratio[0]));
    } else if (in_ratio > opts.ratio[1]) {
      w = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * opts.ratio[1]));
    }
    d.crop = {(height - h) / 2, (width - w) / 2, h, w};
  }
  d.flip = rng.uniform(0.0, 1.0) < opts.flip_probability;
  return d;
}

std::pair<int64_t, int64_t> augment_output_size(const ImageProcessorConfig& cfg) {
  if (cfg.do_center_crop) return {cfg.crop_height, cfg.crop_width};
  if (cfg.shortest_edge > 0) return {cfg.shortest_edge, cfg.shortest_edge};
  return {cfg.resize_height, cfg.resize_width};
}

at::Tensor augment_image(const at::Tensor& image, const ImageProcessorConfig& cfg, const AugmentOptions& opts,
                         uint64_t seed, int64_t epoch, int64_t index) {
  const at::Tensor in = image.contiguous();
  const PixelView v = view_of_tensor(in, "augment_image");
  const auto [h, w] = augment_output_size(cfg);
  at::Tensor out = at::empty({3, h, w}, at::kFloat);
  augment_into(v, cfg, opts, seed, epoch, index, out.data_ptr<float>());
  return out;
}

// ---------------------------------------------------------------- batching

ImageBatch make_image_batch(const ImageDataset& ds, const std::vector<int64_t>& indices,
                            const ImageProcessorConfig& cfg, const ImageBatchOptions& opts) {
  OT_REQUIRE(!indices.empty(), "an image batch needs at least one example index");
  const int64_t B = static_cast<int64_t>(indices.size());
  std::pair<int64_t, int64_t> size;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = indices[b];
    OT_REQUIRE(i >= 0 && i < ds.size(), "example index ", i, " out of range, the ", ds.format, " dataset at ",
               ds.root, " (", ds.split, ") has ", ds.size(), " examples");
    const ImageSlot& s = ds.slots[i];
    require_image_channels(s.channels, ds.root.c_str());
    const auto hw = opts.train ? augment_output_size(cfg) : processor_output_size(cfg, s.height, s.width);
    if (b == 0) size = hw;
    OT_REQUIRE(hw == size, "example ", indices[0], " becomes ", size.first, " x ", size.second, " but example ", i,
               " becomes ", hw.first, " x ", hw.second,
               " after preprocessing; one batch needs one size (a processor with size {height, width} or a center crop)");
  }
  const int64_t H = size.first, W = size.second;
  at::Tensor pixel_values = at::empty({B, 3, H, W}, at::kFloat);  // (B, 3, H, W)
  float* out = pixel_values.data_ptr<float>();
  const uint8_t* pixels = ds.pixels.data_ptr<uint8_t>();
  auto one = [&](int64_t b) {
    const ImageSlot& s = ds.slots[indices[b]];
    const PixelView v{pixels + s.offset, s.height, s.width, s.channels};
    float* dst = out + b * 3 * H * W;
    if (opts.train) {
      augment_into(v, cfg, opts.augment, opts.seed, opts.epoch, indices[b], dst);
    } else {
      preprocess_into(v, cfg, dst);
    }
  };
  if (opts.parallel) {
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) one(b);
    });
  } else {
    for (int64_t b = 0; b < B; ++b) one(b);
  }
  const at::Tensor idx = at::tensor(indices, at::kLong);
  return {pixel_values, ds.labels.index_select(0, idx)};
}

}  // namespace ot
