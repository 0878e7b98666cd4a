// data/image_datasets.cpp: see image_datasets.h. Each reader collects (height, width,
// channels, bytes) per example, then packs them into one uint8 tensor.
#include "data/image_datasets.h"

#include <c10/util/Exception.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "data/image_decode.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarPixelBytes = kCifarSide * kCifarSide * 3;  // 3072: R plane, G plane, B plane

void check_split(const std::string& split) {
  OT_REQUIRE(split == "train" || split == "test", "image dataset split '", split, "' unknown, expected train or test");
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::vector<std::string> numbered_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

// One name per non-empty line (trailing spaces and '\r' dropped); exactly `expected` of them.
std::vector<std::string> read_class_names(const std::string& file, int64_t expected) {
  const std::string text = read_text_file(file);
  std::vector<std::string> names;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  OT_REQUIRE(static_cast<int64_t>(names.size()) == expected, file, ": ", names.size(),
             " class names, expected ", expected, " (one per line)");
  return names;
}

// Examples of fixed shape, filled in record order, packed once at the end.
struct FixedShapeBuilder {
  int64_t height, width, channels;
  std::vector<uint8_t> bytes;
  std::vector<int64_t> labels;
  std::vector<int64_t> coarse_labels;

  int64_t image_bytes() const { return height * width * channels; }

  void finish(ImageDataset* out) {
    const int64_t n = static_cast<int64_t>(labels.size());
    TORCH_INTERNAL_ASSERT(static_cast<int64_t>(bytes.size()) == n * image_bytes());
    out->pixels = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
    std::memcpy(out->pixels.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    std::vector<uint8_t>().swap(bytes);
    out->slots.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out->slots[i] = ImageSlot{i * image_bytes(), height, width, channels};
    out->labels = at::tensor(labels, at::kLong);
    if (!coarse_labels.empty()) out->coarse_labels = at::tensor(coarse_labels, at::kLong);
  }
};

// ---------------------------------------------------------------- image folder

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

constexpr const char* kAcceptedImageExtensions = ".png, .jpg, .jpeg (case ignored)";

// The images of one class folder, in torchvision's order: sorted(os.walk(dir)) visits folders
// by path, and each folder's files are sorted by name.
std::vector<std::string> class_images(const fs::path& class_dir) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
  auto it = fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink);
  for (; it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& p = it->path();
    if (is_hidden(p)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory()) continue;
    const std::string ext = lower_extension(p);
    if (ext != ".png" && ext != ".jpg" && ext != ".jpeg") {
      fail(p.string(), ": ", ext.empty() ? std::string("no extension") : "extension '" + p.extension().string() + "'",
           " is not an image type read here; accepted: ", kAcceptedImageExtensions);
    }
    found.emplace_back(p.parent_path().string(), p.filename().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> files;
  for (const auto& [dir, name] : found) files.push_back(dir + "/" + name);
  OT_REQUIRE(!files.empty(), class_dir.string(), ": class folder has no images (", kAcceptedImageExtensions, ")");
  return files;
}

// ---------------------------------------------------------------- CIFAR

std::string cifar_dir(const std::string& path, const char* archive_folder) {
  const std::string inner = path_join(path, archive_folder);
  if (dir_exists(inner)) return inner;
  OT_REQUIRE(dir_exists(path), path, ": not a directory; expected the folder of the CIFAR binary batches");
  return path;
}

// Appends the records of one batch file. label_limits: one per label byte (CIFAR-10: {10};
// CIFAR-100: {20 coarse, 100 fine}); the last is the label, a first one the coarse label.
void read_cifar_batch(const std::string& file, const std::vector<int64_t>& label_limits, FixedShapeBuilder* b) {
  static const char* const kLabelNames[2][2] = {{"label", ""}, {"coarse label", "fine label"}};
  const std::vector<char> bytes = read_binary_file(file);
  const int64_t label_bytes = static_cast<int64_t>(label_limits.size());
  const int64_t record = label_bytes + kCifarPixelBytes;
  const int64_t size = static_cast<int64_t>(bytes.size());
  OT_REQUIRE(size > 0 && size % record == 0, file, ": ", size, " bytes, not a whole number of ", record,
             "-byte records (", label_bytes, " label byte", label_bytes > 1 ? "s" : "", " + ",
             kCifarPixelBytes, " pixel bytes each)");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t start = b->bytes.size();
  b->bytes.resize(start + static_cast<size_t>(size / record * kCifarPixelBytes));
  uint8_t* out = b->bytes.data() + start;
  const int64_t plane = kCifarSide * kCifarSide;
  for (int64_t r = 0; r < size / record; ++r, p += record, out += kCifarPixelBytes) {
    for (int64_t k = 0; k < label_bytes; ++k) {
      OT_REQUIRE(p[k] < label_limits[k], file, ": record ", r, ": ", kLabelNames[label_bytes - 1][k], " ",
                 static_cast<int>(p[k]), " out of range, expected [0, ", label_limits[k], ")");
    }
    b->labels.push_back(p[label_bytes - 1]);
    if (label_bytes == 2) b->coarse_labels.push_back(p[0]);
    // Planar (C, 32, 32) on disk -> interleaved (32, 32, C).
    const uint8_t* planes = p + label_bytes;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t c = 0; c < 3; ++c) out[i * 3 + c] = planes[c * plane + i];
  }
}

// data_batch_<N>.bin in `dir`, ordered by N.
std::vector<std::string> cifar10_train_batches(const std::string& dir) {
  std::vector<std::pair<long, std::string>> batches;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string prefix = "data_batch_", suffix = ".bin";
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string number = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (number.size() > 6 || !std::all_of(number.begin(), number.end(), [](unsigned char c) { return std::isdigit(c); }))
      continue;
    batches.emplace_back(std::stol(number), e.path().string());
  }
  std::sort(batches.begin(), batches.end());
  std::vector<std::string> files;
  for (const auto& b : batches) files.push_back(b.second);
  return files;
}

// ---------------------------------------------------------------- IDX

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The first of the usual names for `kind` ("images", idx3 / "labels", idx1) that exists.
std::string find_idx_file(const std::string& dir, const std::string& prefix, const std::string& kind, int dims) {
  const std::string idx = "idx" + std::to_string(dims) + "-ubyte";
  const std::vector<std::string> names = {prefix + "-" + kind + "-" + idx, prefix + "-" + kind + "-" + idx + ".gz",
                                          prefix + "-" + kind + "." + idx, prefix + "-" + kind + "." + idx + ".gz"};
  for (const auto& n : names)
    if (file_exists(path_join(dir, n))) return path_join(dir, n);
  fail(dir, ": no ", join(names, " or "), " (MNIST / Fashion-MNIST IDX files)");
}

void require_idx_magic(const std::string& file, const std::vector<uint8_t>& bytes, uint32_t magic, size_t header,
                       const char* what) {
  OT_REQUIRE(bytes.size() >= header, file, ": ", bytes.size(), " bytes, shorter than the ", header,
             "-byte IDX header of ", what);
  const uint32_t got = big_endian_u32(bytes.data());
  OT_REQUIRE(got == magic, file, ": magic number ", hex32(got), ", expected ", hex32(magic), " (IDX ", what, ")");
}

}  // namespace

at::Tensor ImageDataset::image(int64_t i) const {
  OT_REQUIRE(i >= 0 && i < size(), "image index ", i, " out of range, the ", format, " dataset at ", root, " has ",
             size(), " images");
  const ImageSlot& s = slots[static_cast<size_t>(i)];
  return pixels.narrow(0, s.offset, s.height * s.width * s.channels).view({s.height, s.width, s.channels});
}

ImageDataset select_examples(const ImageDataset& ds, const std::vector<int64_t>& classes, int64_t skip,
                             int64_t max_examples, const std::string& where) {
  OT_REQUIRE(max_examples >= 0 && skip >= 0, where, ": skip_examples and max_examples must be >= 0, got ", skip,
             " and ", max_examples);
  std::vector<int64_t> new_label(static_cast<size_t>(ds.num_classes()), classes.empty() ? 0 : -1);
  if (classes.empty()) {
    for (int64_t c = 0; c < ds.num_classes(); ++c) new_label[static_cast<size_t>(c)] = c;
  } else {
    for (size_t k = 0; k < classes.size(); ++k) {
      const int64_t c = classes[k];
      OT_REQUIRE(c >= 0 && c < ds.num_classes(), where, ": class ", c, " is not one of the dataset's ",
                 ds.num_classes(), " (0 to ", ds.num_classes() - 1, ")");
      OT_REQUIRE(new_label[static_cast<size_t>(c)] < 0, where, ": class ", c, " is listed twice");
      new_label[static_cast<size_t>(c)] = static_cast<int64_t>(k);
    }
  }
  ImageDataset out;
  out.format = ds.format;
  out.root = ds.root;
  out.split = ds.split;
  out.pixels = ds.pixels;
  if (classes.empty()) {
    out.class_names = ds.class_names;
  } else {
    for (int64_t c : classes) out.class_names.push_back(ds.class_names[static_cast<size_t>(c)]);
  }
  const auto* labels = ds.labels.data_ptr<int64_t>();
  const int64_t* coarse = ds.coarse_labels.defined() ? ds.coarse_labels.data_ptr<int64_t>() : nullptr;
  std::vector<int64_t> kept_labels, kept_coarse;
  for (int64_t i = 0; i < ds.size(); ++i) {
    if (max_examples > 0 && static_cast<int64_t>(out.slots.size()) == max_examples) break;
    const int64_t l = new_label[static_cast<size_t>(labels[i])];
    if (l < 0) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    out.slots.push_back(ds.slots[static_cast<size_t>(i)]);
    kept_labels.push_back(l);
    if (coarse) kept_coarse.push_back(coarse[i]);
    if (!ds.files.empty()) out.files.push_back(ds.files[static_cast<size_t>(i)]);
  }
  OT_REQUIRE(!out.slots.empty(), where, ": no example is left after selecting the classes");
  out.labels = at::tensor(kept_labels, at::kLong);
  if (ds.coarse_labels.defined()) {
    out.coarse_labels = at::tensor(kept_coarse, at::kLong);
    out.coarse_class_names = ds.coarse_class_names;
  }
  return out;
}

const std::vector<std::string>& image_dataset_formats() {
  static const std::vector<std::string> formats = {"imagefolder", "cifar10", "cifar100", "idx"};
  return formats;
}

ImageDataset load_image_dataset(const std::string& format, const std::string& path, const std::string& split) {
  if (format == "imagefolder") return load_image_folder(path, split);
  if (format == "cifar10") return load_cifar10(path, split);
  if (format == "cifar100") return load_cifar100(path, split);
  if (format == "idx") return load_idx(path, split);
  fail("image dataset format '", format, "' unknown; known formats: ", join(image_dataset_formats(), ", "),
       " (MNIST and Fashion-MNIST are idx)");
}

ImageDataset load_image_folder(const std::string& path, const std::string& split) {
  check_split(split);
  const std::string split_dir = path_join(path, split);
  const std::string root = dir_exists(split_dir) ? split_dir : path;
  OT_REQUIRE(dir_exists(root), root, ": not a directory; expected an image-folder tree ROOT/<class>/<image> (",
             kAcceptedImageExtensions, ")");
  ImageDataset ds;
  ds.format = "imagefolder";
  ds.root = root;
  ds.split = split;

  std::vector<std::vector<std::string>> files_per_class;
  try {
    for (const auto& e : fs::directory_iterator(root)) {
      if (is_hidden(e.path())) continue;
      OT_REQUIRE(e.is_directory(), e.path().string(), ": a file directly in the image-folder root ", root,
                 "; expected only class folders (ROOT/<class>/<image>)");
      ds.class_names.push_back(e.path().filename().string());
    }
    OT_REQUIRE(!ds.class_names.empty(), root, ": no class folders; expected an image-folder tree ROOT/<class>/<image> (",
               kAcceptedImageExtensions, ")");
    std::sort(ds.class_names.begin(), ds.class_names.end());
    for (const auto& c : ds.class_names) files_per_class.push_back(class_images(fs::path(root) / c));
  } catch (const fs::filesystem_error& e) {
    fail(root, ": cannot list the image folder (", e.what(), ")");
  }

  // Decode everything, then pack: the decoded copies are released one by one while packing.
  std::vector<RgbImage> decoded;
  std::vector<int64_t> labels;
  int64_t total = 0;
  for (size_t c = 0; c < files_per_class.size(); ++c) {
    for (const auto& f : files_per_class[c]) {
      decoded.push_back(read_image_file(f));
      total += static_cast<int64_t>(decoded.back().pixels.size());
      labels.push_back(static_cast<int64_t>(c));
      ds.files.push_back(f);
    }
  }
  ds.pixels = at::empty({total}, at::kByte);
  uint8_t* out = ds.pixels.data_ptr<uint8_t>();
  int64_t offset = 0;
  for (auto& img : decoded) {
    ds.slots.push_back(ImageSlot{offset, img.height, img.width, 3});
    std::memcpy(out + offset, img.pixels.data(), img.pixels.size());
    offset += static_cast<int64_t>(img.pixels.size());
    std::vector<uint8_t>().swap(img.pixels);
  }
  ds.labels = at::tensor(labels, at::kLong);
  return ds;
}

ImageDataset load_cifar10(const std::string& path, const std::string& split) {
  check_split(split);
  const std::string dir = cifar_dir(path, "cifar-10-batches-bin");
  std::vector<std::string> files;
  if (split == "train") {
    files = cifar10_train_batches(dir);
    OT_REQUIRE(!files.empty(), dir, ": no data_batch_<N>.bin (CIFAR-10 binary version: data_batch_1.bin ... ",
               "data_batch_5.bin, test_batch.bin)");
  } else {
    files = {path_join(dir, "test_batch.bin")};
    OT_REQUIRE(file_exists(files[0]), dir, ": no test_batch.bin (CIFAR-10 binary version)");
  }
  ImageDataset ds;
  ds.format = "cifar10";
  ds.root = dir;
  ds.split = split;
  FixedShapeBuilder b{kCifarSide, kCifarSide, 3, {}, {}, {}};
  for (const auto& f : files) read_cifar_batch(f, {10}, &b);
  b.finish(&ds);
  const std::string meta = path_join(dir, "batches.meta.txt");
  ds.class_names = file_exists(meta) ? read_class_names(meta, 10) : numbered_names(10);
  return ds;
}

ImageDataset load_cifar100(const std::string& path, const std::string& split) {
  check_split(split);
  const std::string dir = cifar_dir(path, "cifar-100-binary");
  const std::string file = path_join(dir, split + ".bin");
  OT_REQUIRE(file_exists(file), dir, ": no ", split, ".bin (CIFAR-100 binary version: train.bin, test.bin)");
  ImageDataset ds;
  ds.format = "cifar100";
  ds.root = dir;
  ds.split = split;
  FixedShapeBuilder b{kCifarSide, kCifarSide, 3, {}, {}, {}};
  read_cifar_batch(file, {20, 100}, &b);
  b.finish(&ds);
  const std::string fine = path_join(dir, "fine_label_names.txt");
  const std::string coarse = path_join(dir, "coarse_label_names.txt");
  ds.class_names = file_exists(fine) ? read_class_names(fine, 100) : numbered_names(100);
  ds.coarse_class_names = file_exists(coarse) ? read_class_names(coarse, 20) : numbered_names(20);
  return ds;
}

ImageDataset load_idx(const std::string& path, const std::string& split) {
  check_split(split);
  OT_REQUIRE(dir_exists(path), path, ": not a directory; expected the folder of the MNIST / Fashion-MNIST IDX files");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_file = find_idx_file(path, prefix, "images", 3);
  const std::string labels_file = find_idx_file(path, prefix, "labels", 1);

  // Images: magic, count, rows, columns (big-endian u32), then count x rows x columns bytes.
  std::vector<uint8_t> images = read_maybe_gzip_file(images_file);
  require_idx_magic(images_file, images, 0x00000803, 16, "images: unsigned bytes, 3 dimensions");
  const uint64_t n = big_endian_u32(images.data() + 4);
  const uint64_t rows = big_endian_u32(images.data() + 8);
  const uint64_t cols = big_endian_u32(images.data() + 12);
  OT_REQUIRE(n > 0, images_file, ": the header says 0 images");
  OT_REQUIRE(rows > 0 && cols > 0 && rows * cols <= static_cast<uint64_t>(kMaxImagePixels), images_file,
             ": images of ", rows, " x ", cols, " pixels, expected a non-empty size below the ", kMaxImagePixels,
             "-pixel limit");
  const uint64_t image_bytes = rows * cols;
  // n < 2^32 and rows x cols is capped above, so n * image_bytes cannot overflow.
  OT_REQUIRE(images.size() - 16 == n * image_bytes, images_file, ": ", images.size(),
             " bytes (decompressed), expected 16 + ", n, " x ", rows, " x ", cols, " = ", 16 + n * image_bytes,
             " for the ", n, " images its header declares");

  // Labels: magic, count, then count bytes.
  const std::vector<uint8_t> labels = read_maybe_gzip_file(labels_file);
  require_idx_magic(labels_file, labels, 0x00000801, 8, "labels: unsigned bytes, 1 dimension");
  const uint64_t n_labels = big_endian_u32(labels.data() + 4);
  OT_REQUIRE(labels.size() == 8 + n_labels, labels_file, ": ", labels.size(), " bytes (decompressed), expected 8 + ",
             n_labels, " for the ", n_labels, " labels its header declares");
  OT_REQUIRE(n_labels == n, images_file, " holds ", n, " images but ", labels_file, " holds ", n_labels,
             " labels; expected one label per image");

  ImageDataset ds;
  ds.format = "idx";
  ds.root = path;
  ds.split = split;
  FixedShapeBuilder b{static_cast<int64_t>(rows), static_cast<int64_t>(cols), 1, {}, {}, {}};
  b.bytes.assign(images.begin() + 16, images.end());
  std::vector<uint8_t>().swap(images);
  b.labels.assign(labels.begin() + 8, labels.end());
  b.finish(&ds);
  const int64_t max_label = *std::max_element(b.labels.begin(), b.labels.end());
  ds.class_names = numbered_names(max_label + 1);
  return ds;
}

std::vector<uint8_t> read_maybe_gzip_file(const std::string& path) {
  const std::vector<char> raw = read_binary_file(path);
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (!gz) return std::vector<uint8_t>(raw.begin(), raw.end());

  z_stream z{};
  OT_REQUIRE(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK, path, ": zlib could not start a gzip decoder");
  struct InflateGuard {
    z_stream* z;
    ~InflateGuard() { inflateEnd(z); }
  } guard{&z};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  OT_REQUIRE(raw.size() == z.avail_in, path, ": ", raw.size(), " bytes, too large for one zlib call");
  std::vector<uint8_t> out(std::max<size_t>(raw.size() * 4, 1024));
  size_t produced = 0;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    z.next_out = out.data() + produced;
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    const uInt before = z.avail_out;
    const int rc = inflate(&z, Z_NO_FLUSH);
    produced += before - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      OT_REQUIRE(inflateReset(&z) == Z_OK, path, ": zlib could not restart for the next gzip member");
      continue;  // concatenated gzip members, as gunzip reads them
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) fail(path, ": the gzip stream is truncated (it ends before its end marker)");
    OT_REQUIRE(rc == Z_OK || rc == Z_BUF_ERROR, path, ": not a valid gzip file (zlib: ",
               z.msg ? std::string(z.msg) : "error " + std::to_string(rc), ")");
  }
  out.resize(produced);
  return out;
}

}  // namespace ot
