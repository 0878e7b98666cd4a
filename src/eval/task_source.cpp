// eval/task_source.cpp: minimal piqa / arc / openbookqa readers (see task_source.h; to be
// replaced by data/tasks.h).
#include "eval/task_source.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

using nlohmann::json;

std::string str_field(const json& j, const char* key, const std::string& where) {
  OT_REQUIRE(j.is_object() && j.contains(key) && j[key].is_string(), where, ": expected a string field '", key, "'");
  return j[key].get<std::string>();
}

// Index of a letter key in A, B, C, ... after the harness's "1".."5" -> "A".."E" mapping.
int64_t letter_index(std::string key, size_t n_choices, const std::string& where) {
  static const std::string digits = "12345";
  if (key.size() == 1 && digits.find(key[0]) != std::string::npos) key = std::string(1, "ABCDE"[key[0] - '1']);
  OT_REQUIRE(key.size() == 1 && key[0] >= 'A' && static_cast<size_t>(key[0] - 'A') < n_choices, where,
             ": answerKey '", key, "' does not name one of the ", n_choices, " choices");
  return key[0] - 'A';
}

std::string strip_ascii(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

void set_choices(TaskDoc& d, std::vector<std::string> choices) {
  for (const std::string& c : choices) d.continuations.push_back(" " + c);
  d.choices = std::move(choices);
  d.train_target = d.choices.at(static_cast<size_t>(d.gold));  // Offsite: no leading space
}

TaskDoc piqa_doc(const json& j, const std::string& where) {
  TaskDoc d;
  d.task = "piqa";
  d.id = where;
  d.eval_context = d.train_context = "Question: " + str_field(j, "goal", where) + "\nAnswer:";
  OT_REQUIRE(j.contains("label") && j["label"].is_number_integer(), where, ": expected an integer field 'label'");
  d.gold = j["label"].get<int64_t>();
  OT_REQUIRE(d.gold == 0 || d.gold == 1, where, ": label ", d.gold, " is not 0 or 1");
  set_choices(d, {str_field(j, "sol1", where), str_field(j, "sol2", where)});
  return d;
}

TaskDoc arc_doc(const std::string& task, const json& j, const std::string& where) {
  TaskDoc d;
  d.task = task;
  d.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : where;
  d.eval_context = d.train_context = "Question: " + str_field(j, "question", where) + "\nAnswer:";
  OT_REQUIRE(j.contains("choices") && j["choices"].is_object() && j["choices"].contains("text") &&
                 j["choices"]["text"].is_array(),
             where, ": expected 'choices' {\"text\": [...], \"label\": [...]} (HF ai2_arc layout)");
  std::vector<std::string> choices;
  for (const json& t : j["choices"]["text"]) {
    OT_REQUIRE(t.is_string(), where, ": choices.text holds a non-string");
    choices.push_back(t.get<std::string>());
  }
  d.gold = letter_index(str_field(j, "answerKey", where), choices.size(), where);
  set_choices(d, std::move(choices));
  return d;
}

TaskDoc openbookqa_doc(const json& j, const std::string& where) {
  TaskDoc d;
  d.task = "openbookqa";
  d.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : where;
  OT_REQUIRE(j.contains("question") && j["question"].is_object(), where,
             ": expected 'question' {\"stem\", \"choices\"} (original OpenBookQA layout)");
  const json& q = j["question"];
  d.eval_context = d.train_context = str_field(q, "stem", where);
  OT_REQUIRE(q.contains("choices") && q["choices"].is_array(), where, ": expected an array 'question.choices'");
  std::vector<std::string> choices;
  for (const json& c : q["choices"]) choices.push_back(str_field(c, "text", where));
  const std::string key = strip_ascii(str_field(j, "answerKey", where));
  OT_REQUIRE(key.size() == 1 && key[0] >= 'A' && key[0] <= 'D' && static_cast<size_t>(key[0] - 'A') < choices.size(),
             where, ": answerKey '", key, "' is not one of A-D");
  d.gold = key[0] - 'A';
  set_choices(d, std::move(choices));
  return d;
}

}  // namespace

std::vector<TaskDoc> read_task_docs(const std::string& name, const std::string& path) {
  OT_REQUIRE(name == "piqa" || name == "arc_easy" || name == "arc_challenge" || name == "openbookqa",
             "task '", name, "': this build reads only piqa, arc_easy, arc_challenge and openbookqa");
  std::istringstream in(read_text_file(path));
  std::vector<TaskDoc> docs;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (strip_ascii(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    OT_REQUIRE(j.is_object(), where, ": expected a JSON object per line");
    if (name == "piqa") docs.push_back(piqa_doc(j, where));
    else if (name == "openbookqa") docs.push_back(openbookqa_doc(j, where));
    else docs.push_back(arc_doc(name, j, where));
  }
  OT_REQUIRE(!docs.empty(), path, ": no records");
  return docs;
}

}  // namespace ot
