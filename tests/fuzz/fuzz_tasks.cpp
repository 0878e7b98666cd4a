// tests/fuzz/fuzz_tasks.cpp: libFuzzer target for the downstream-task readers (data/tasks.h):
// every task, every file layout (.jsonl records, .json documents, .txt HellaSwag / RACE),
// strict and with skip_malformed. The first input byte picks the task (b % 8), the file
// extension ((b / 8) % 3: .jsonl, .json, .txt) and skip_malformed ((b / 24) % 2); the rest
// is the file. Any input must load or throw ot::Error; anything else escaping, a crash or a
// sanitizer report is a bug. Torch-free.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/tasks.h"
#include "fuzz_common.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const kExt[] = {".jsonl", ".json", ".txt"};
  const unsigned b = data[0];
  const std::string& task = ot::known_tasks().at(b % ot::known_tasks().size());
  const std::string path = ot::fuzz::scratch_dir() + "/task" + kExt[(b / 8) % 3];
  ot::fuzz::write_file(path, data + 1, size - 1);
  ot::TaskReadOptions opts;
  opts.skip_malformed = (b / 24) % 2 == 1;
  try {
    ot::TaskData t = ot::load_task(task, path, opts);
    // Whatever loaded must be usable by the harness: every eval doc has a choice to score
    // (or is a greedy-alias doc with aliases) and a gold index inside its choices.
    for (const ot::TaskDoc& d : t.eval_docs) {
      if (d.kind == ot::TaskKind::kGreedyAlias) continue;
      if (d.choices.empty() || d.gold < 0 || d.gold >= static_cast<std::int64_t>(d.choices.size()))
        std::abort();
    }
    (void)ot::split_validation(t.train_docs);
  } catch (const ot::Error& e) {
    ot::fuzz::rejected(e);
  }
  return 0;
}
