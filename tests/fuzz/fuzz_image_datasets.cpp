// tests/fuzz/fuzz_image_datasets.cpp: libFuzzer target for the binary dataset readers
// (data/image_datasets.h). The first input byte picks the layout; the rest, split at the first
// 0xFF 0x00 pair into two parts, becomes its files: CIFAR-10 `test_batch.bin` (+
// `batches.meta.txt`), CIFAR-100 `test.bin` (+ `fine_label_names.txt`), or MNIST IDX
// `t10k-images-idx3-ubyte` + `t10k-labels-idx1-ubyte` (gzip'ed when the byte is odd). Any input
// must load a consistent dataset or throw ot::Error; anything else escaping, a crash or a
// sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <zlib.h>

#include "data/image_datasets.h"
#include "fuzz_common.h"
#include "util/error.h"

namespace {

std::string gzipped(const std::string& raw) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void put(const std::string& path, const std::string& bytes) {
  ot::fuzz::write_file(path, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string dir = ot::fuzz::scratch_dir() + "/images";
  ot::fuzz::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::uint8_t mode = data[0];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t cut = rest.find(std::string("\xff\x00", 2));
  const std::string first = rest.substr(0, cut);
  const std::string second = cut == std::string::npos ? std::string() : rest.substr(cut + 2);

  std::string format;
  switch (mode % 3) {
    case 0:
      format = "cifar10";
      put(dir + "/test_batch.bin", first);
      if (!second.empty()) put(dir + "/batches.meta.txt", second);
      break;
    case 1:
      format = "cifar100";
      put(dir + "/test.bin", first);
      if (!second.empty()) put(dir + "/fine_label_names.txt", second);
      break;
    default: {
      format = "idx";
      const bool gz = (mode / 3) % 2 == 1;
      put(dir + "/t10k-images-idx3-ubyte" + (gz ? ".gz" : ""), gz ? gzipped(first) : first);
      put(dir + "/t10k-labels-idx1-ubyte" + (gz ? ".gz" : ""), gz ? gzipped(second) : second);
    }
  }
  try {
    const ot::ImageDataset ds = ot::load_image_dataset(format, dir, "test");
    // A loaded dataset is consistent: one label per image, each image readable.
    if (ds.labels.numel() != ds.size()) std::abort();
    for (int64_t i = 0; i < ds.size(); ++i) (void)ds.image(i);
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
