// data/image_datasets.h: image-classification datasets in the layouts people have on disk,
// each read whole into one in-memory ImageDataset (pixels back to back in one uint8 buffer,
// labels int64, class names). load_image_dataset picks the reader by format name:
//
//   "imagefolder"  torchvision's ImageFolder: ROOT/<class>/.../<image>.{png,jpg,jpeg}
//                  (extension case ignored). Classes are the sub-folders of ROOT sorted by
//                  name (byte order, which is Python's sorted() for UTF-8 names), label =
//                  index; files are ordered as torchvision does (folders sorted by path,
//                  files by name), nested folders included. ROOT is PATH/<split> when that
//                  folder exists (HF's imagefolder layout: PATH/train/<class>/...), else PATH.
//                  Names starting with '.' (.DS_Store, .ipynb_checkpoints) are skipped; any
//                  other file that is not an accepted image, a file directly in ROOT, an
//                  empty ROOT or an empty class folder is an error. Images are decoded to RGB
//                  (data/image_decode.h), so every one has 3 channels.
//   "cifar10"      the binary version: PATH holds (or PATH/cifar-10-batches-bin holds)
//                  data_batch_<N>.bin (train, every N found, in order of N) and
//                  test_batch.bin (test); records of 1 label byte + 3072 pixel bytes
//                  (1024 red, 1024 green, 1024 blue, each 32 x 32 row-major).
//                  Class names from batches.meta.txt when present, else "0".."9".
//   "cifar100"     PATH (or PATH/cifar-100-binary) holds train.bin / test.bin; records of
//                  coarse label, fine label, 3072 pixel bytes. label = fine label;
//                  coarse_labels kept. Names from fine_label_names.txt and
//                  coarse_label_names.txt when present, else "0".."99" / "0".."19".
//   "idx"          MNIST / Fashion-MNIST: PATH holds <p>-images-idx3-ubyte and
//                  <p>-labels-idx1-ubyte (p = train | t10k), each optionally gzip'ed (.gz)
//                  or named <p>-images.idx3-ubyte; big-endian magic 0x00000803 / 0x00000801,
//                  unsigned-byte data, sizes checked against the header. Images keep their
//                  one (gray) channel; the processor makes three. The files do not say which
//                  dataset they are, so class names are "0".."<max label>".
//
// Every error names the file (and the record where it applies) and what was expected.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ot {

// Where one image lies in ImageDataset::pixels.
struct ImageSlot {
  int64_t offset = 0;  // first byte
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 (gray) or 3 (RGB)
};

struct ImageDataset {
  std::string format;  // imagefolder | cifar10 | cifar100 | idx
  std::string root;    // the folder the examples were read from
  std::string split;   // train | test
  std::vector<std::string> class_names;  // label -> name
  at::Tensor pixels;                     // (total bytes) uint8: every image, (H, W, C) row-major
  std::vector<ImageSlot> slots;          // one per example
  at::Tensor labels;                     // (N) int64 in [0, class_names.size())
  // CIFAR-100 only (undefined / empty otherwise): the superclass of each example.
  at::Tensor coarse_labels;                     // (N) int64 in [0, 20)
  std::vector<std::string> coarse_class_names;  // 20 names
  // imagefolder only (empty otherwise): the file each example came from.
  std::vector<std::string> files;

  int64_t size() const { return static_cast<int64_t>(slots.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  // (H, W, C) uint8 view of example i's pixels (no copy); i in [0, size()).
  at::Tensor image(int64_t i) const;
};

// The format names load_image_dataset knows, in the order error messages list them.
const std::vector<std::string>& image_dataset_formats();

// Reads `split` ("train" or "test") of the dataset at `path` in `format` (see above).
ImageDataset load_image_dataset(const std::string& format, const std::string& path, const std::string& split);

// The readers behind it (the same checks and messages).
ImageDataset load_image_folder(const std::string& path, const std::string& split);
ImageDataset load_cifar10(const std::string& path, const std::string& split);
ImageDataset load_cifar100(const std::string& path, const std::string& split);
ImageDataset load_idx(const std::string& path, const std::string& split);

// The examples of `ds` whose labels are in `classes`, relabelled by their position there
// (classes[k] -> k) and named accordingly, in dataset order; of them the first `skip` are
// left out and then only `max_examples` kept (0: all). Pixels are shared, not copied. A class
// id outside the dataset's or given twice, or nothing left, is an error naming `where`.
ImageDataset select_examples(const ImageDataset& ds, const std::vector<int64_t>& classes, int64_t skip,
                             int64_t max_examples, const std::string& where);

// Reads a whole file, gunzip'ing it when its name ends in ".gz" (zlib); a damaged or
// truncated gzip stream is an error naming the file.
std::vector<uint8_t> read_maybe_gzip_file(const std::string& path);

}  // namespace ot
