// eval/task_source.h: TEMPORARY minimal task readers for `ot eval` and the eval tests,
// until the full readers of data/tasks.h are merged (then read_task_docs forwards to them
// and this file's readers go away). Supported, evaluation fields only plus the Offsite
// training pair, templates from ../shared/LM_EVAL.md:
//   piqa        HF layout {goal, sol1, sol2, label} (valid_with_labels.jsonl)
//   arc_easy, arc_challenge   HF layout {id, question, choices{text[], label[]}, answerKey}
//               (hf_test.jsonl); digit keys "1".."5" map to "A".."E"
//   openbookqa  original layout {id, question{stem, choices[{text, label}]}, answerKey}
//               (Main/test.jsonl)
#pragma once

#include <string>
#include <vector>

#include "data/task.h"

namespace ot {

// Reads `path` (JSON lines) as task `name`. Throws ot::Error "<path>:<line>: ..." for a
// malformed record, and for a task name it does not support.
std::vector<TaskDoc> read_task_docs(const std::string& name, const std::string& path);

}  // namespace ot
