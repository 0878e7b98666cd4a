// checkpoint/torch_bin.cpp: see torch_bin.h. LibTorch's own unpickler does the work
// (torch::pickle_load, present in 1.13 and 2.x); this file checks the container first
// (torch_zip.cpp) so that the common failures get a message a user can act on and a corrupt
// zip never reaches LibTorch's unchecked zip reader, and turns every c10::Error into an
// ot::Error naming the file.
#include "checkpoint/torch_bin.h"

#include <c10/util/Exception.h>
#include <torch/serialize.h>

#include <vector>

#include "checkpoint/torch_zip.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

bool starts_with(const std::vector<char>& data, const char* magic, std::size_t n) {
  if (data.size() < n) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (data[i] != magic[i]) return false;
  return true;
}

}  // namespace

StateDict load_torch_bin(const std::string& path) {
  OT_REQUIRE(file_exists(path), path, ": no such file");
  std::vector<char> data = read_binary_file(path);
  OT_REQUIRE(!data.empty(), path, ": file is empty, expected a PyTorch zip checkpoint");
  if (!starts_with(data, "PK\x03\x04", 4)) {
    // torch.save before 1.6 wrote a bare pickle stream (starts with the PROTO opcode).
    if (static_cast<unsigned char>(data[0]) == 0x80) {
      fail(path, ": legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with torch>=1.6 "
           "(torch.save(torch.load(f), f)) or convert it to safetensors");
    }
    fail(path, ": not a PyTorch zip checkpoint (no zip signature at the start of the file)");
  }
  // The zip central directory sits at the end of the file, so a cut-off file loses it; every
  // zip structure is checked to lie inside the file before LibTorch's reader (which does not
  // check) sees it.
  check_torch_zip(data.data(), data.size(), path);

  c10::IValue root;
  try {
    root = torch::pickle_load(data);
  } catch (const c10::Error& e) {
    fail(path, ": not a readable PyTorch zip checkpoint (truncated or corrupt?): ",
         first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    fail(path, ": not a readable PyTorch zip checkpoint (truncated or corrupt?): ",
         first_line(e.what()));
  }
  OT_REQUIRE(root.isGenericDict(), path, ": expected a pickled state dict (dict of str -> Tensor), got ",
             root.tagKind());

  StateDict out;
  for (const auto& item : root.toGenericDict()) {
    OT_REQUIRE(item.key().isString(), path, ": state dict key of type ", item.key().tagKind(),
               ", expected str");
    const std::string name = item.key().toStringRef();
    OT_REQUIRE(item.value().isTensor(), path, ": entry '", name, "' is a ",
               item.value().tagKind(), ", expected a Tensor");
    out.emplace(name, item.value().toTensor());
  }
  return out;
}

}  // namespace ot
