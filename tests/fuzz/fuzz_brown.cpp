// tests/fuzz/fuzz_brown.cpp: libFuzzer target for the Brown Corpus reader (data/brown.h):
// load_brown on a corpus directory made from the input, then select_brown for every split
// and write_brown_text. The input is NUL-separated parts: the first is cats.txt, part i >= 1
// is written as corpus file "c" + ('a' + (i - 1) % 18) + two digits ((i - 1) / 18 + 1), i.e.
// ca01, cb01, ..., cr01, ca02, ... Any input must load or throw ot::Error; anything else
// escaping, a crash or a sanitizer report is a bug. Torch-free.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "data/brown.h"
#include "fuzz_common.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string dir = ot::fuzz::scratch_dir() + "/brown";
  ot::fuzz::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      if (parts.size() == 18 * 9 + 1) break;
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    char name[16];
    if (i == 0) std::snprintf(name, sizeof name, "cats.txt");
    else std::snprintf(name, sizeof name, "c%c%02d", static_cast<char>('a' + (i - 1) % 18), static_cast<int>((i - 1) / 18 + 1));
    const std::string& p = parts[i];
    ot::fuzz::write_file(dir + "/" + name, reinterpret_cast<const std::uint8_t*>(p.data()), p.size());
  }

  try {
    const std::vector<ot::BrownDocument> docs = ot::load_brown(dir);
    for (ot::BrownSplit split : {ot::BrownSplit::kTrain, ot::BrownSplit::kValidation,
                                 ot::BrownSplit::kTest, ot::BrownSplit::kAll}) {
      ot::BrownSelection sel;
      sel.split = split;
      try {
        (void)ot::select_brown(docs, sel);
      } catch (const ot::Error& e) {
        ot::fuzz::rejected(e);
      }
    }
    (void)ot::write_brown_text(docs, ot::fuzz::scratch_dir() + "/brown.txt");
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
