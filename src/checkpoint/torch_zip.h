// checkpoint/torch_zip.h: the torch-free half of the `pytorch_model.bin` reader: a check of
// the zip container (torch.save's format since 1.6) before LibTorch's zip reader sees it.
// LibTorch 1.13's torch::pickle_load reads the central directory wherever the end records
// say it is, without bounds checks, so a corrupt file crashes it; this check makes sure
// every structure miniz reads lies inside the file. Kept free of LibTorch so that fuzz
// targets (tests/fuzz/) compile it alone with clang and sanitizers.
//
// Checked: the end-of-central-directory record (and, when present, the zip64 locator and
// zip64 end record, which torch.save always writes), a single-disk archive, the central
// directory inside the file, and for every entry its central header, its local header and
// its (stored or compressed) data inside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ot {

// Throws ot::Error naming `path` and the structure at fault unless `size` bytes at `data`
// form a zip archive as described above. Returns the number of entries.
std::uint64_t check_torch_zip(const char* data, std::size_t size, const std::string& path);

}  // namespace ot
