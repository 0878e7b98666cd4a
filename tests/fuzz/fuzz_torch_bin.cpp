// tests/fuzz/fuzz_torch_bin.cpp: libFuzzer target for the `pytorch_model.bin` reader
// (checkpoint/torch_bin.h load_torch_bin): the zip directory and entries, the pickle machine,
// the storages and views. The input is written to a file and loaded. Any input must load or
// throw ot::Error; anything else escaping, a crash, a leak or a sanitizer report is a bug.
// Linked with LibTorch for the tensors it makes (see fuzz_torch_bin.sources).
//
// The seeds in tests/fuzz/seeds/torch_bin were written by this binary with
// torch::pickle_save (the zip format torch.save writes since 1.6):
//   OT_FUZZ_WRITE_SEEDS=tests/fuzz/seeds/torch_bin ./build-fuzz/tests/fuzz_torch_bin
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/torch_bin.h"
#include "fuzz_common.h"
#include "util/error.h"

namespace {

void save(const std::string& path, const c10::IValue& v) {
  const std::vector<char> bytes = torch::pickle_save(v);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Small state dicts: fp32, a tied pair (shared storage), fp16 and bf16 and int64, an empty
// dict, and a list where a dict belongs.
void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
  d.insert("weight", torch::arange(6, torch::kFloat).reshape({2, 3}));
  d.insert("bias", torch::ones({2}));
  save(dir + "/fp32.bin", d);
  c10::impl::GenericDict tied(c10::StringType::get(), c10::TensorType::get());
  const at::Tensor emb = torch::arange(4, torch::kFloat).reshape({2, 2});
  tied.insert("embed.weight", emb);
  tied.insert("lm_head.weight", emb);
  save(dir + "/tied.bin", tied);
  c10::impl::GenericDict types(c10::StringType::get(), c10::TensorType::get());
  types.insert("h", torch::ones({3}, torch::kHalf));
  types.insert("b", torch::ones({2}, torch::kBFloat16));
  types.insert("i", torch::arange(3, torch::kLong));
  save(dir + "/dtypes.bin", types);
  save(dir + "/empty.bin", c10::impl::GenericDict(c10::StringType::get(), c10::TensorType::get()));
  save(dir + "/list.bin", c10::List<int64_t>({1, 2, 3}));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("OT_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = ot::fuzz::scratch_dir() + "/pytorch_model.bin";
  ot::fuzz::write_file(path, data, size);
  try {
    const ot::StateDict sd = ot::load_torch_bin(path);
    for (const auto& [name, t] : sd) (void)t.numel();
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
