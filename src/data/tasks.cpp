// data/tasks.cpp: see tasks.h. Each record parser turns one JSON value (or one 6-line
// HellaSwag item) into complete docs or throws ot::Error without a location; the Reader
// adds "<file>:<line>" and either rethrows or counts the record as skipped.
#include "data/tasks.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ot {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- JSON field access

std::string type_name(const json& v) { return v.type_name(); }

// The key is a plain string: a std::string temporary at the call would make the returned
// reference look dangling to compilers (it points into `obj`).
const json& need(const json& obj, const char* key) {
  OT_REQUIRE(obj.is_object(), "expected a JSON object, got ", type_name(obj));
  auto it = obj.find(key);
  OT_REQUIRE(it != obj.end(), "key '", key, "' missing");
  return *it;
}

std::string as_string(const json& v, const std::string& key) {
  OT_REQUIRE(v.is_string(), "key '", key, "': expected a string, got ", type_name(v));
  return v.get<std::string>();
}

std::string need_string(const json& obj, const std::string& key) {
  return as_string(need(obj, key.c_str()), key);
}

std::vector<std::string> as_string_array(const json& v, const std::string& key) {
  OT_REQUIRE(v.is_array(), "key '", key, "': expected an array of strings, got ", type_name(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    OT_REQUIRE(v[i].is_string(), "key '", key, "[", i, "]': expected a string, got ", type_name(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::vector<std::string> need_string_array(const json& obj, const std::string& key) {
  return as_string_array(need(obj, key.c_str()), key);
}

// A label stored as an integer or as a decimal string ("3"), in [0, n).
int64_t need_index(const json& obj, const std::string& key, size_t n) {
  const json& v = need(obj, key.c_str());
  int64_t x = -1;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    OT_REQUIRE(!s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }), "key '", key,
               "': '", s, "' is not a label, expected an integer in [0, ", n, ")");
    x = std::stoll(s);
  } else {
    fail("key '", key, "': expected an integer label, got ", type_name(v));
  }
  OT_REQUIRE(x >= 0 && static_cast<size_t>(x) < n, "key '", key, "': label ", x,
             " out of range, expected an integer in [0, ", n, ")");
  return x;
}

std::string optional_id(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return {};
}

// ---------------------------------------------------------------- doc builders

void set_multiple_choice(TaskDoc& d, std::string ctx, std::vector<std::string> choices, int64_t gold) {
  d.kind = TaskKind::kMultipleChoice;
  d.eval_context = std::move(ctx);
  d.choices = std::move(choices);
  d.continuations.clear();
  for (const auto& c : d.choices) d.continuations.push_back(" " + c);
  d.gold = gold;
}

TaskDoc make_piqa(const std::string& goal, const std::string& sol1, const std::string& sol2, int64_t label) {
  TaskDoc d;
  d.task = "piqa";
  const std::string ctx = "Question: " + goal + "\nAnswer:";
  set_multiple_choice(d, ctx, {sol1, sol2}, label);
  d.train_context = ctx;
  d.train_target = d.choices[static_cast<size_t>(label)];
  return d;
}

// openbookqa: gold = index of answerKey.strip() in A..D (harness v0.3.0 ignores the labels).
TaskDoc make_openbookqa(const std::string& stem, std::vector<std::string> texts, const std::string& answer_key) {
  OT_REQUIRE(!texts.empty(), "no choices, expected 4");
  const std::string key = python_strip(answer_key);
  static const std::string letters = "ABCD";
  const size_t gold = key.size() == 1 ? letters.find(key[0]) : std::string::npos;
  OT_REQUIRE(gold != std::string::npos && gold < texts.size(), "answerKey '", answer_key,
             "': expected one of A, B, C, D naming one of the ", texts.size(), " choices");
  TaskDoc d;
  d.task = "openbookqa";
  set_multiple_choice(d, stem, std::move(texts), static_cast<int64_t>(gold));
  d.train_context = stem;
  d.train_target = d.choices[gold];
  return d;
}

// arc: "1".."5" -> "A".."E", then the index in A..E.
TaskDoc make_arc(const std::string& task, const std::string& question, std::vector<std::string> texts,
                 const std::string& answer_key) {
  OT_REQUIRE(!texts.empty(), "no choices, expected 3 to 5");
  static const std::map<std::string, std::string> digit_to_letter = {
      {"1", "A"}, {"2", "B"}, {"3", "C"}, {"4", "D"}, {"5", "E"}};
  std::string key = answer_key;
  if (auto it = digit_to_letter.find(key); it != digit_to_letter.end()) key = it->second;
  static const std::string letters = "ABCDE";
  const size_t gold = key.size() == 1 ? letters.find(key[0]) : std::string::npos;
  OT_REQUIRE(gold != std::string::npos && gold < texts.size(), "answerKey '", answer_key,
             "': expected A..E or 1..5 naming one of the ", texts.size(), " choices");
  TaskDoc d;
  d.task = task;
  const std::string ctx = "Question: " + question + "\nAnswer:";
  set_multiple_choice(d, ctx, std::move(texts), static_cast<int64_t>(gold));
  d.train_context = ctx;
  d.train_target = d.choices[gold];
  return d;
}

TaskDoc make_hellaswag(const std::string& query, const std::vector<std::string>& endings, int64_t label) {
  OT_REQUIRE(!endings.empty(), "no endings, expected 4");
  std::vector<std::string> choices;
  for (const auto& e : endings) choices.push_back(hellaswag_preprocess(e));
  TaskDoc d;
  d.task = "hellaswag";
  set_multiple_choice(d, query, std::move(choices), label);
  d.train_context = query;
  d.train_target = d.choices[static_cast<size_t>(label)];
  return d;
}

TaskDoc make_sciq(const json& r) {
  const std::string support = need_string(r, "support");
  const std::string question = need_string(r, "question");
  std::vector<std::string> choices = {need_string(r, "distractor1"), need_string(r, "distractor2"),
                                      need_string(r, "distractor3"), need_string(r, "correct_answer")};
  TaskDoc d;
  d.task = "sciq";
  // Training keeps the raw template (no strip); the harness strips the whole context.
  const std::string raw = support + "\nQuestion: " + question + "\nAnswer:";
  set_multiple_choice(d, python_strip(raw), choices, 3);
  d.train_context = raw;
  d.train_target = choices[3];
  return d;
}

TaskDoc make_webqs(const std::string& question, const std::vector<std::string>& answers) {
  OT_REQUIRE(!answers.empty(), "key 'answers': empty list, expected at least one answer");
  TaskDoc d;
  d.task = "webqs";
  d.kind = TaskKind::kGreedyAlias;
  d.normalized_metric = false;
  d.eval_context = "Question: " + question + "\nAnswer:";
  d.choices = webqs_prune_aliases(answers);
  for (const auto& a : d.choices) d.continuations.push_back(" " + a);
  d.gold = -1;  // any alias counts
  d.train_context = d.eval_context;
  d.train_target = " " + answers[0];  // dataset order, not the sorted aliases
  return d;
}

struct RaceProblem {
  std::string question;
  std::vector<std::string> options;
  int64_t answer = -1;
};

int64_t race_answer_index(const std::string& letter, size_t n_options) {
  static const std::string letters = "ABCD";
  const size_t i = letter.size() == 1 ? letters.find(letter[0]) : std::string::npos;
  OT_REQUIRE(i != std::string::npos && i < n_options, "answer '", letter,
             "': expected one of A, B, C, D naming one of the ", n_options, " options");
  return static_cast<int64_t>(i);
}

// One harness doc per article (only the last question scored, LM_EVAL 3.7) and one
// training doc per question.
void make_race(const std::string& id, const std::string& article, const std::vector<RaceProblem>& problems,
               std::vector<TaskDoc>* eval, std::vector<TaskDoc>* train) {
  OT_REQUIRE(!problems.empty(), "article without questions, expected at least one");
  if (eval) {
    std::string ctx = "Article: " + article + "\n\n";
    for (size_t i = 0; i + 1 < problems.size(); ++i) {
      const RaceProblem& p = problems[i];
      const std::string& answer_text = p.options[static_cast<size_t>(p.answer)];
      // v0.3.0 quirk: a cloze question keeps only its last 5 characters (" _  .").
      if (ends_with(p.question, "  _  .")) {
        ctx += p.question.substr(p.question.size() - 5) + answer_text + "\n";
      } else {
        ctx += "Question: " + p.question + "\n" + "Answer: " + answer_text + "\n";
      }
    }
    const RaceProblem& last = problems.back();
    ctx += last.question;
    TaskDoc d;
    d.task = "race";
    d.id = id;
    set_multiple_choice(d, ctx, last.options, last.answer);
    d.normalized_metric = false;
    eval->push_back(std::move(d));
  }
  if (train) {
    for (size_t i = 0; i < problems.size(); ++i) {
      const RaceProblem& p = problems[i];
      TaskDoc d;
      d.task = "race";
      d.id = id + "#" + std::to_string(i);
      d.train_context = "Article: " + article + "\n\n" + "Question: " + p.question + "\n\n" + "Answer:";
      d.train_target = p.options[static_cast<size_t>(p.answer)];
      train->push_back(std::move(d));
    }
  }
}

// Original RACE / ExpMRC article object: parallel questions[], options[][], answers[].
void parse_race_article(const json& r, std::string* id, std::string* article, std::vector<RaceProblem>* out) {
  *article = need_string(r, "article");
  *id = optional_id(r, "id");
  const auto questions = need_string_array(r, "questions");
  const json& options = need(r, "options");
  const auto answers = need_string_array(r, "answers");
  OT_REQUIRE(options.is_array(), "key 'options': expected an array of option lists, got ", type_name(options));
  OT_REQUIRE(options.size() == questions.size() && answers.size() == questions.size(), "questions (",
             questions.size(), "), options (", options.size(), ") and answers (", answers.size(),
             ") differ in length, expected one entry per question");
  out->clear();
  for (size_t i = 0; i < questions.size(); ++i) {
    RaceProblem p;
    p.question = questions[i];
    p.options = as_string_array(options[i], "options[" + std::to_string(i) + "]");
    OT_REQUIRE(!p.options.empty(), "key 'options[", i, "]': empty, expected 4 options");
    p.answer = race_answer_index(answers[i], p.options.size());
    out->push_back(std::move(p));
  }
}

// ---------------------------------------------------------------- reading machinery

std::string basename_of(const std::string& path) { return fs::path(path).filename().string(); }

struct Line {
  int64_t number;  // 1-based
  std::string text;
};

// Splits into lines (LF or CRLF); a final newline does not start another line; a UTF-8
// BOM at the start is dropped.
std::vector<Line> split_lines(const std::string& text) {
  std::vector<Line> lines;
  size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  int64_t n = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back({++n, std::move(line)});
    pos = end + 1;
  }
  return lines;
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c == ' ' || c == '\t'; });
}

// A problem with the file as a whole (not one record): never skipped.
struct FatalError : Error {
  using Error::Error;
};

class Reader {
 public:
  Reader(const TaskReadOptions& opts, TaskData& out) : opts_(opts), out_(out) {}

  // Runs `parse` for one record; on failure rethrows with `where` or counts the skip.
  void record(const std::string& where, const std::function<void()>& parse) {
    ++out_.records;
    try {
      parse();
    } catch (const FatalError&) {
      throw;
    } catch (const Error& e) {
      malformed(where, e.what());
    } catch (const json::exception& e) {
      malformed(where, e.what());
    }
  }

  void add(TaskDoc d, const std::string& fallback_id) {
    if (d.id.empty()) d.id = fallback_id;
    if (opts_.build_eval && opts_.build_train) {
      out_.eval_docs.push_back(d);
      out_.train_docs.push_back(std::move(d));
    } else if (opts_.build_eval) {
      out_.eval_docs.push_back(std::move(d));
    } else if (opts_.build_train) {
      out_.train_docs.push_back(std::move(d));
    }
  }

  const TaskReadOptions& opts() const { return opts_; }
  TaskData& out() { return out_; }

 private:
  void malformed(const std::string& where, const std::string& what) {
    const std::string msg = where + ": " + what;
    if (!opts_.skip_malformed) throw Error(msg);
    ++out_.skipped;
    out_.skip_messages.push_back(msg);
  }

  const TaskReadOptions& opts_;
  TaskData& out_;
};

std::string lower_ext(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

// A record parser for one layout: (record, location) -> docs added to the reader.
using RecordParser =
    std::function<void(const json& rec, const std::string& fallback_id, int64_t index, Reader& rd)>;

// ---- per-task layouts chosen from the first record's keys

bool has(const json& r, const char* key) { return r.is_object() && r.contains(key); }

std::vector<std::string> original_choice_texts(const json& question) {
  const json& choices = need(question, "choices");
  OT_REQUIRE(choices.is_array(), "key 'question.choices': expected an array of {text, label}, got ",
             type_name(choices));
  std::vector<std::string> texts;
  for (size_t i = 0; i < choices.size(); ++i)
    texts.push_back(need_string(choices[i], "text"));
  return texts;
}

std::vector<std::string> hf_choice_texts(const json& r) {
  const json& choices = need(r, "choices");
  const auto texts = as_string_array(need(choices, "text"), "choices.text");
  const auto labels = as_string_array(need(choices, "label"), "choices.label");
  OT_REQUIRE(texts.size() == labels.size(), "choices.text has ", texts.size(), " entries and choices.label ",
             labels.size(), ", expected the same number");
  return texts;
}

// PIQA labels: one "0"/"1" per line, aligned with the records.
struct PiqaLabels {
  std::string path;
  std::vector<Line> lines;
};

PiqaLabels read_piqa_labels(const std::string& jsonl_path, const std::string& explicit_path) {
  PiqaLabels l;
  if (!explicit_path.empty()) {
    l.path = explicit_path;
  } else {
    const fs::path p(jsonl_path);
    l.path = (p.parent_path() / (p.stem().string() + "-labels.lst")).string();
    OT_REQUIRE(file_exists(l.path), jsonl_path, ": PIQA records without 'label' need a labels file: ",
               l.path, " not found (pass TaskReadOptions::labels_path)");
  }
  l.lines = split_lines(read_text_file(l.path));
  return l;
}

RecordParser choose_parser(const std::string& task, const json& first, const std::string& path,
                           const std::string& where, const TaskReadOptions& opts, std::string* layout,
                           std::shared_ptr<PiqaLabels>* piqa_labels) {
  const std::string kind = lower_ext(path) == ".jsonl" ? "jsonl" : "json";
  auto keys = [&] {
    std::string k;
    if (first.is_object())
      for (auto it = first.begin(); it != first.end(); ++it) k += (k.empty() ? "" : ", ") + it.key();
    return "{" + k + "}";
  };
  if (task == "piqa") {
    OT_REQUIRE(has(first, "goal") && has(first, "sol1") && has(first, "sol2"), where,
               ": first record has keys ", keys(), ", expected PIQA {goal, sol1, sol2[, label]}");
    if (has(first, "label")) {
      *layout = "piqa_hf_" + kind;
      return [](const json& r, const std::string& fid, int64_t, Reader& rd) {
        const int64_t label = need_index(r, "label", 2);
        TaskDoc d = make_piqa(need_string(r, "goal"), need_string(r, "sol1"), need_string(r, "sol2"), label);
        d.id = optional_id(r, "id");
        rd.add(std::move(d), fid);
      };
    }
    *layout = "piqa_original_" + kind + "+labels";
    *piqa_labels = std::make_shared<PiqaLabels>(read_piqa_labels(path, opts.labels_path));
    auto labels = *piqa_labels;
    return [labels](const json& r, const std::string& fid, int64_t i, Reader& rd) {
      OT_REQUIRE(i < static_cast<int64_t>(labels->lines.size()), "no label: ", labels->path, " has only ",
                 labels->lines.size(), " lines, expected one per record");
      const Line& l = labels->lines[static_cast<size_t>(i)];
      OT_REQUIRE(l.text == "0" || l.text == "1", labels->path, ":", l.number, ": label '", l.text,
                 "', expected 0 or 1");
      TaskDoc d = make_piqa(need_string(r, "goal"), need_string(r, "sol1"), need_string(r, "sol2"),
                            l.text == "1" ? 1 : 0);
      d.id = optional_id(r, "id");
      rd.add(std::move(d), fid);
    };
  }
  if (task == "openbookqa" || task == "arc_easy" || task == "arc_challenge") {
    const bool obqa = task == "openbookqa";
    if (obqa && has(first, "question_stem")) {
      *layout = "openbookqa_hf_" + kind;
      return [](const json& r, const std::string& fid, int64_t, Reader& rd) {
        TaskDoc d = make_openbookqa(need_string(r, "question_stem"), hf_choice_texts(r), need_string(r, "answerKey"));
        d.id = optional_id(r, "id");
        rd.add(std::move(d), fid);
      };
    }
    OT_REQUIRE(has(first, "question") && has(first, "answerKey"), where, ": first record has keys ", keys(),
               obqa ? ", expected OpenBookQA {question: {stem, choices}, answerKey} or {question_stem, choices, answerKey}"
                    : ", expected ARC {question: {stem, choices}, answerKey} or {question, choices, answerKey}");
    const bool original = first["question"].is_object();
    *layout = task.substr(0, obqa ? 10 : 3) + (original ? "_original_" : "_hf_") + kind;
    return [task, obqa, original](const json& r, const std::string& fid, int64_t, Reader& rd) {
      std::string text;
      std::vector<std::string> choices;
      if (original) {
        const json& q = need(r, "question");
        OT_REQUIRE(q.is_object(), "key 'question': expected an object {stem, choices}, got ", type_name(q));
        text = need_string(q, "stem");
        choices = original_choice_texts(q);
      } else {
        text = need_string(r, "question");
        choices = hf_choice_texts(r);
      }
      const std::string key = need_string(r, "answerKey");
      TaskDoc d = obqa ? make_openbookqa(text, std::move(choices), key) : make_arc(task, text, std::move(choices), key);
      d.id = optional_id(r, "id");
      rd.add(std::move(d), fid);
    };
  }
  if (task == "hellaswag") {
    OT_REQUIRE(has(first, "ctx_a") && has(first, "endings"), where, ": first record has keys ", keys(),
               ", expected HellaSwag {activity_label, ctx_a, ctx_b, endings, label}");
    *layout = "hellaswag_hf_" + kind;
    return [](const json& r, const std::string& fid, int64_t, Reader& rd) {
      const auto endings = need_string_array(r, "endings");
      const std::string query = hellaswag_preprocess(need_string(r, "activity_label") + ": " +
                                                     need_string(r, "ctx_a") + " " +
                                                     python_capitalize_ascii(need_string(r, "ctx_b")));
      TaskDoc d = make_hellaswag(query, endings, need_index(r, "label", endings.size()));
      d.id = optional_id(r, "ind");
      rd.add(std::move(d), fid);
    };
  }
  if (task == "sciq") {
    OT_REQUIRE(has(first, "correct_answer") && has(first, "distractor1"), where, ": first record has keys ", keys(),
               ", expected SciQ {support, question, distractor1..3, correct_answer}");
    *layout = "sciq_hf_" + kind;
    return [](const json& r, const std::string& fid, int64_t, Reader& rd) { rd.add(make_sciq(r), fid); };
  }
  if (task == "webqs") {
    const bool brmson = has(first, "qText");
    OT_REQUIRE((brmson || has(first, "question")) && has(first, "answers"), where, ": first record has keys ",
               keys(), ", expected WebQuestions {question, answers} or {qText, answers}");
    *layout = brmson ? "webqs_brmson_" + kind : "webqs_hf_" + kind;
    return [brmson](const json& r, const std::string& fid, int64_t, Reader& rd) {
      TaskDoc d = make_webqs(need_string(r, brmson ? "qText" : "question"), need_string_array(r, "answers"));
      d.id = optional_id(r, "qId");
      rd.add(std::move(d), fid);
    };
  }
  fail(path, ": task '", task, "' has no ", kind, " record layout");
}

// RACE records: whole articles (original / ExpMRC) or HF rows grouped by article.
class RaceCollector {
 public:
  explicit RaceCollector(Reader& rd) : rd_(rd) {}

  using Get = std::function<json()>;

  void article(const Get& get, const std::string& where) {
    rd_.record(where, [&] {
      const json r = get();
      std::string id, text;
      std::vector<RaceProblem> problems;
      parse_race_article(r, &id, &text, &problems);
      emit(id.empty() ? where_id(where) : id, text, problems);
    });
  }

  // HF row {article, question, options, answer[, example_id]}; grouped at finish().
  void row(const Get& get, const std::string& where) {
    rd_.record(where, [&] {
      const json r = get();
      RaceProblem p;
      const std::string text = need_string(r, "article");
      p.question = need_string(r, "question");
      p.options = need_string_array(r, "options");
      p.answer = race_answer_index(need_string(r, "answer"), p.options.size());
      auto it = group_of_.find(text);
      if (it == group_of_.end()) {
        it = group_of_.emplace(text, groups_.size()).first;
        std::string id = optional_id(r, "example_id");
        groups_.push_back({id.empty() ? where_id(where) : id, text, {}});
      }
      groups_[it->second].problems.push_back(std::move(p));
    });
  }

  void finish() {
    for (auto& g : groups_) emit(g.id, g.article, g.problems);
    groups_.clear();
    group_of_.clear();
  }

 private:
  struct Group {
    std::string id, article;
    std::vector<RaceProblem> problems;
  };
  static std::string where_id(const std::string& where) { return basename_of(where); }

  void emit(const std::string& id, const std::string& article, const std::vector<RaceProblem>& problems) {
    auto& out = rd_.out();
    make_race(id, article, problems, rd_.opts().build_eval ? &out.eval_docs : nullptr,
              rd_.opts().build_train ? &out.train_docs : nullptr);
  }

  Reader& rd_;
  std::vector<Group> groups_;
  std::map<std::string, size_t> group_of_;
};

// Parses one JSONL line into an object (throws without location).
json parse_jsonl_line(const Line& l) {
  OT_REQUIRE(!is_blank(l.text), "empty line, expected a JSON object");
  json r;
  try {
    r = json::parse(l.text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large
    fail("not valid JSON (", e.what(), "), expected one JSON object per line");
  }
  OT_REQUIRE(r.is_object(), "expected a JSON object, got ", type_name(r));
  return r;
}

// nlohmann parse errors carry "line L, column C"; prefix the file.
json parse_json_document(const std::string& path, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large
    fail(path, ": not valid JSON (", e.what(), "), expected a JSON document");
  }
}

void read_race_file(const std::string& path, Reader& rd) {
  const std::string ext = lower_ext(path);
  const std::string text = read_text_file(path);
  RaceCollector rc(rd);
  if (ext == ".jsonl") {
    // Per-article objects ({article, questions, ...}) or HF rows, told by the first line.
    const auto lines = split_lines(text);
    bool articles = false;
    for (const Line& l : lines) {
      try {
        articles = parse_jsonl_line(l).contains("questions");
        break;
      } catch (const Error&) {
      }
    }
    if (rd.out().layout.empty()) rd.out().layout = articles ? "race_original_jsonl" : "race_hf_jsonl";
    for (const Line& l : lines) {
      const std::string where = path + ":" + std::to_string(l.number);
      auto get = [&] { return parse_jsonl_line(l); };
      if (articles) rc.article(get, where);
      else rc.row(get, where);
    }
    rc.finish();
    return;
  }
  const json doc = parse_json_document(path, text);
  if (doc.is_object() && doc.contains("data")) {
    const json& data = doc["data"];
    OT_REQUIRE(data.is_array(), path, ": key 'data': expected an array of articles, got ", type_name(data));
    rd.out().layout = "race_expmrc_json";
    for (size_t i = 0; i < data.size(); ++i)
      rc.article([&] { return data[i]; }, path + ": data[" + std::to_string(i) + "]");
  } else if (doc.is_object()) {
    if (rd.out().layout.empty()) rd.out().layout = "race_original_json";
    rc.article([&] { return doc; }, path);
  } else if (doc.is_array()) {
    const bool rows = !doc.empty() && has(doc[0], "question");
    rd.out().layout = rows ? "race_hf_json" : "race_original_json_array";
    for (size_t i = 0; i < doc.size(); ++i) {
      const std::string where = path + ": [" + std::to_string(i) + "]";
      if (rows) rc.row([&] { return doc[i]; }, where);
      else rc.article([&] { return doc[i]; }, where);
    }
    rc.finish();
  } else {
    fail(path, ": expected a RACE article object, an ExpMRC {version, data} wrapper or an array, got ",
         type_name(doc));
  }
}

// Records of a JSONL file or a JSON array, parsed with the layout of the first good record.
void read_records(const std::string& task, const std::string& path, Reader& rd) {
  const std::string ext = lower_ext(path);
  const std::string text = read_text_file(path);
  std::string layout;
  RecordParser parser;
  std::shared_ptr<PiqaLabels> piqa_labels;
  int64_t index = 0;  // record index in this file; PIQA labels align with it
  auto run = [&](const std::string& where, const std::string& fid, const std::function<json()>& get) {
    const int64_t i = index++;
    rd.record(where, [&] {
      const json r = get();
      if (!parser) {
        // The layout is fixed by the first well-formed record; a mismatch there is fatal.
        try {
          parser = choose_parser(task, r, path, where, rd.opts(), &layout, &piqa_labels);
        } catch (const Error& e) {
          throw FatalError(e.what());
        }
        if (rd.out().layout.empty()) rd.out().layout = layout;
        if (rd.out().layout != layout)
          throw FatalError(detail::concat(path, ": layout ", layout, " differs from ", rd.out().layout,
                                          " of the files before it"));
      }
      parser(r, fid, i, rd);
    });
  };
  if (ext == ".jsonl") {
    for (const Line& l : split_lines(text))
      run(path + ":" + std::to_string(l.number), basename_of(path) + ":" + std::to_string(l.number),
          [&] { return parse_jsonl_line(l); });
  } else {
    const json doc = parse_json_document(path, text);
    OT_REQUIRE(doc.is_array(), path, ": expected a JSON array of records, got ", type_name(doc));
    for (size_t i = 0; i < doc.size(); ++i)
      run(path + ": [" + std::to_string(i) + "]", basename_of(path) + ":[" + std::to_string(i) + "]",
          [&] { return doc[i]; });
  }
  if (piqa_labels) {
    OT_REQUIRE(index == static_cast<int64_t>(piqa_labels->lines.size()), piqa_labels->path, ": has ",
               piqa_labels->lines.size(), " labels, expected ", index, " (one per record of ", path, ")");
  }
}

// ctx_b is the text after the last sentence end when it starts lower-case (see tasks.h).
std::string recapitalize_ctx_b(const std::string& line) {
  size_t best = std::string::npos;
  for (const char* sep : {". ", "! ", "? "}) {
    const size_t p = line.rfind(sep);
    if (p != std::string::npos && (best == std::string::npos || p > best)) best = p;
  }
  if (best == std::string::npos) return line;
  const size_t start = best + 2;
  if (start >= line.size() || !(line[start] >= 'a' && line[start] <= 'z')) return line;
  return line.substr(0, start) + python_capitalize_ascii(line.substr(start));
}

// 6 lines per item: "activity_label: ctx", gold label, 4 endings.
void read_hellaswag_text(const std::string& path, Reader& rd) {
  const auto lines = split_lines(read_text_file(path));
  if (rd.out().layout.empty()) rd.out().layout = "hellaswag_text";
  OT_REQUIRE(rd.out().layout == "hellaswag_text", path, ": layout hellaswag_text differs from ", rd.out().layout,
             " of the files before it");
  for (size_t i = 0; i < lines.size(); i += 6) {
    const std::string where = path + ":" + std::to_string(lines[i].number);
    rd.record(where, [&] {
      OT_REQUIRE(i + 6 <= lines.size(), "incomplete item: ", lines.size() - i,
                 " lines left at the end of the file, expected 6 (context, label, 4 endings)");
      const Line& label_line = lines[i + 1];
      const std::string& lab = label_line.text;
      OT_REQUIRE(lab.size() == 1 && lab[0] >= '0' && lab[0] <= '3', "line ", label_line.number, ": label '", lab,
                 "', expected 0..3 (line 2 of each 6-line item)");
      std::vector<std::string> endings;
      for (size_t k = 2; k < 6; ++k) endings.push_back(lines[i + k].text);
      const std::string query = hellaswag_preprocess(recapitalize_ctx_b(lines[i].text));
      rd.add(make_hellaswag(query, endings, lab[0] - '0'), basename_of(path) + ":" + std::to_string(lines[i].number));
    });
  }
}

void read_one(const std::string& task, const std::string& path, Reader& rd) {
  rd.out().files.push_back(path);
  if (task == "race") {
    if (dir_exists(path)) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(path))
        if (e.is_regular_file()) files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      OT_REQUIRE(!files.empty(), path, ": directory has no files, expected one RACE article per file");
      for (const auto& f : files) read_race_file(f, rd);
      rd.out().layout = "race_original_dir";
      return;
    }
    read_race_file(path, rd);
    return;
  }
  OT_REQUIRE(file_exists(path), path, ": no such file (task ", task, ")");
  const std::string ext = lower_ext(path);
  if (ext == ".txt") {
    OT_REQUIRE(task == "hellaswag", path, ": .txt files are read only for hellaswag (6-line format) and race, not ",
               task);
    read_hellaswag_text(path, rd);
    return;
  }
  OT_REQUIRE(ext == ".jsonl" || ext == ".json", path, ": unknown extension '", ext,
             "', expected .jsonl, .json (or .txt for hellaswag/race)");
  read_records(task, path, rd);
}

}  // namespace

// ---------------------------------------------------------------- public helpers

std::string hellaswag_preprocess(const std::string& text) {
  std::string s = python_strip(text);
  // " [title]" -> ". "
  std::string t;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 8, " [title]") == 0) {
      t += ". ";
      i += 8;
    } else {
      t += s[i++];
    }
  }
  // Regex \[.*?\] : from each '[' to the nearest ']' with no newline between.
  std::string u;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '[') {
      size_t j = i + 1;
      while (j < t.size() && t[j] != ']' && t[j] != '\n') ++j;
      if (j < t.size() && t[j] == ']') {
        i = j + 1;
        continue;
      }
    }
    u += t[i++];
  }
  // One left-to-right pass of "  " -> " " (3 spaces become 2).
  std::string v;
  for (size_t i = 0; i < u.size();) {
    if (u.compare(i, 2, "  ") == 0) {
      v += ' ';
      i += 2;
    } else {
      v += u[i++];
    }
  }
  return v;
}

std::vector<std::string> webqs_prune_aliases(std::vector<std::string> answers) {
  // std::string compares bytes as unsigned char: UTF-8 byte order == code point order.
  std::sort(answers.begin(), answers.end());
  std::vector<std::string> kept;
  for (auto& a : answers) {
    if (!kept.empty() && a.compare(0, kept.back().size(), kept.back()) == 0) continue;
    kept.push_back(std::move(a));
  }
  return kept;
}

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> names = {"piqa",      "openbookqa", "arc_easy", "arc_challenge",
                                                 "hellaswag", "sciq",       "webqs",    "race"};
  return names;
}

std::string canonical_task_name(const std::string& task) {
  if (task == "web_questions") return "webqs";
  const auto& k = known_tasks();
  OT_REQUIRE(std::find(k.begin(), k.end(), task) != k.end(), "unknown task '", task,
             "', expected one of piqa, openbookqa, arc_easy, arc_challenge, hellaswag, sciq, webqs "
             "(or web_questions), race");
  return task;
}

TaskData load_task(const std::string& task, const std::vector<std::string>& paths, const TaskReadOptions& opts) {
  TaskData out;
  out.task = canonical_task_name(task);
  OT_REQUIRE(!paths.empty(), "task ", out.task, ": no files given");
  OT_REQUIRE(opts.build_eval || opts.build_train, "task ", out.task,
             ": TaskReadOptions builds neither the eval nor the training form");
  Reader rd(opts, out);
  for (const auto& p : paths) read_one(out.task, p, rd);
  return out;
}

TaskData load_task(const std::string& task, const std::string& path, const TaskReadOptions& opts) {
  return load_task(task, std::vector<std::string>{path}, opts);
}

TaskFiles task_files(const std::string& task, const std::string& root) {
  const std::string t = canonical_task_name(task);
  auto at = [&](const std::string& rel) { return path_join(root, rel); };
  TaskFiles f;
  if (t == "piqa") {
    f.eval = {at("piqa/valid_with_labels.jsonl")};
    f.validation = f.eval;  // Offsite selects checkpoints on the split the harness scores
  } else if (t == "openbookqa") {
    f.eval = {at("openbookqa/Main/test.jsonl")};
    f.train = {at("openbookqa/Main/train.jsonl")};
    f.validation = {at("openbookqa/Main/dev.jsonl")};
  } else if (t == "arc_easy" || t == "arc_challenge") {
    const std::string dir = t, name = t == "arc_easy" ? "ARC-Easy" : "ARC-Challenge";
    f.eval = {at(dir + "/hf_test.jsonl")};
    f.train = {at(dir + "/" + name + "-Train.jsonl")};
    f.validation = {at(dir + "/" + name + "-Dev.jsonl")};
  } else if (t == "hellaswag") {
    f.eval = {at("hellaswag/hellaswag_val_full.part1.txt"), at("hellaswag/hellaswag_val_full.part2.txt"),
              at("hellaswag/hellaswag_val_full.part3.txt")};
    f.validation = f.eval;
  } else if (t == "sciq") {  // not stored in ../shared; the HF names
    f.eval = {at("sciq/test.jsonl")};
    f.train = {at("sciq/train.jsonl")};
    f.validation = {at("sciq/validation.jsonl")};
  } else if (t == "webqs") {
    f.eval = {at("webquestions/hf_like_test.jsonl")};
    f.train = {at("webquestions/hf_like_train.jsonl")};  // validation: split_validation(train)
  } else if (t == "race") {
    f.eval = {at("race/expmrc-race-dev.json")};  // fallback: no RACE-high test copy stored
  }
  return f;
}

int64_t validation_split_size(int64_t n, int percent) {
  OT_REQUIRE(percent >= 0 && percent <= 100, "validation split percentage ", percent, " outside [0, 100]");
  // int(round(p * n / 100)) with round-half-to-even, in exact integer arithmetic.
  const uint64_t q = static_cast<uint64_t>(percent) * static_cast<uint64_t>(n);
  uint64_t k = q / 100;
  const uint64_t r = q % 100;
  if (r > 50 || (r == 50 && (k % 2 == 1))) ++k;
  return static_cast<int64_t>(k);
}

TrainValidationSplit split_validation(const std::vector<TaskDoc>& docs, int percent, uint64_t seed) {
  (void)seed;
  const auto k = static_cast<std::size_t>(validation_split_size(static_cast<int64_t>(docs.size()), percent));
  TrainValidationSplit s;
  s.validation.assign(docs.begin(), docs.begin() + static_cast<std::ptrdiff_t>(k));
  s.train.assign(docs.begin() + static_cast<std::ptrdiff_t>(k), docs.end());
  return s;
}

}  // namespace ot
