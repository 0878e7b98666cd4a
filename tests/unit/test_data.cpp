// tests/unit/test_data.cpp: task readers on the real files in ../shared/data/tasks
// (counts, harness contexts and training templates written out from LM_EVAL.md, original vs
// HF layouts, malformed lines), TaskTrainSource batches with the GPT-2 tokenizer, and the
// LM corpus token cache and group_texts blocks.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/task_train.h"
#include "data/tasks.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using test::expect_error;
using test::write_file;

std::string tasks_dir(const std::string& rel) { return test::shared_path("data/tasks/" + rel); }
std::string gpt2_dir() { return test::shared_path("data/tokenizers/gpt2"); }



TaskData load_default(const std::string& task, const TaskReadOptions& o = {}) {
  return load_task(task, task_files(task, test::shared_path("data/tasks")).eval, o);
}

// Eval and training fields of two docs agree (ids may differ).
void expect_same_doc(const TaskDoc& a, const TaskDoc& b) {
  EXPECT_EQ(a.eval_context, b.eval_context);
  EXPECT_EQ(a.continuations, b.continuations);
  EXPECT_EQ(a.choices, b.choices);
  EXPECT_EQ(a.gold, b.gold);
  EXPECT_EQ(a.train_context, b.train_context);
  EXPECT_EQ(a.train_target, b.train_target);
}

// ------------------------------------------------------------------ counts

TEST(TaskData, RecordCountsOfTheScoredSplits) {
  EXPECT_EQ(load_default("piqa").eval_docs.size(), 1838u);
  EXPECT_EQ(load_default("openbookqa").eval_docs.size(), 500u);
  EXPECT_EQ(load_default("arc_easy").eval_docs.size(), 2376u);
  EXPECT_EQ(load_default("arc_challenge").eval_docs.size(), 1172u);
  EXPECT_EQ(load_default("hellaswag").eval_docs.size(), 10042u);
  EXPECT_EQ(load_default("webqs").eval_docs.size(), 2032u);
  EXPECT_EQ(load_default("web_questions").eval_docs.size(), 2032u);
  const TaskData race = load_default("race");
  EXPECT_EQ(race.layout, "race_expmrc_json");
  EXPECT_EQ(race.eval_docs.size(), 167u);   // articles
  EXPECT_EQ(race.train_docs.size(), 561u);  // questions
  EXPECT_EQ(race.skipped, 0);
}

TEST(TaskData, TrainFilesAndRegistry) {
  const std::string root = test::shared_path("data/tasks");
  EXPECT_EQ(load_task("arc_easy", task_files("arc_easy", root).train).train_docs.size(), 2251u);
  EXPECT_EQ(load_task("arc_challenge", task_files("arc_challenge", root).validation).eval_docs.size(), 299u);
  EXPECT_EQ(load_task("openbookqa", task_files("openbookqa", root).train).train_docs.size(), 4957u);
  EXPECT_EQ(load_task("webqs", task_files("webqs", root).train).train_docs.size(), 3778u);
  EXPECT_TRUE(task_files("piqa", root).train.empty());
  EXPECT_TRUE(task_files("hellaswag", root).train.empty());
  EXPECT_EQ(task_files("hellaswag", root).eval.size(), 3u);
  EXPECT_TRUE(task_files("webqs", root).validation.empty());
  expect_error([] { task_files("winogrande", "/x"); }, {"unknown task 'winogrande'"});
}

// ------------------------------------------------------------------ first records (LM_EVAL.md)

TEST(TaskData, PiqaFirstRecord) {
  const TaskData t = load_default("piqa");
  EXPECT_EQ(t.layout, "piqa_hf_jsonl");
  const TaskDoc& d = t.eval_docs[0];
  const std::string goal = "How do I ready a guinea pig cage for it's new occupants?";
  const std::string sol1 =
      "Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will "
      "also need to supply it with a water bottle and a food dish.";
  const std::string sol2 =
      "Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you "
      "will also need to supply it with a water bottle and a food dish.";
  EXPECT_EQ(d.eval_context, "Question: " + goal + "\nAnswer:");
  EXPECT_EQ(d.continuations, (std::vector<std::string>{" " + sol1, " " + sol2}));
  EXPECT_EQ(d.choices, (std::vector<std::string>{sol1, sol2}));
  EXPECT_EQ(d.gold, 0);
  EXPECT_TRUE(d.normalized_metric);
  EXPECT_EQ(d.train_context, "Question: " + goal + "\nAnswer:");
  EXPECT_EQ(d.train_target, sol1);  // no leading space
}

TEST(TaskData, OpenBookQaFirstRecord) {
  const TaskData t = load_default("openbookqa");
  EXPECT_EQ(t.layout, "openbookqa_original_jsonl");
  const TaskDoc& d = t.eval_docs[0];
  const std::string stem =
      "A person wants to start saving money so that they can afford a nice vacation at the end of the year. "
      "After looking over their budget and expenses, they decide the best way to save money is to";
  EXPECT_EQ(d.id, "8-343");
  EXPECT_EQ(d.eval_context, stem);  // bare stem
  EXPECT_EQ(d.continuations, (std::vector<std::string>{" make more phone calls", " quit eating lunch out",
                                                       " buy less with monopoly money", " have lunch with friends"}));
  EXPECT_EQ(d.gold, 1);
  EXPECT_EQ(d.train_context, stem);
  EXPECT_EQ(d.train_target, "quit eating lunch out");
}

TEST(TaskData, ArcFirstRecords) {
  const TaskData e = load_default("arc_easy");
  EXPECT_EQ(e.layout, "arc_hf_jsonl");
  const TaskDoc& d = e.eval_docs[0];
  EXPECT_EQ(d.eval_context,
            "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
  EXPECT_EQ(d.continuations,
            (std::vector<std::string>{" Sunlight is the source of energy for nearly all ecosystems.",
                                      " Most ecosystems are found on land instead of in water.",
                                      " Carbon dioxide is more available than other gases.",
                                      " The producers in all ecosystems are plants."}));
  EXPECT_EQ(d.gold, 0);
  EXPECT_EQ(d.train_target, "Sunlight is the source of energy for nearly all ecosystems.");

  const TaskData ch = load_default("arc_challenge");
  const TaskDoc& c = ch.eval_docs[0];
  EXPECT_EQ(c.task, "arc_challenge");
  EXPECT_EQ(c.eval_context,
            "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the "
            "most likely effect of this increase in rotation?\nAnswer:");
  EXPECT_EQ(c.gold, 2);
  EXPECT_EQ(c.continuations[2], " Planetary days will become shorter.");
  EXPECT_EQ(c.train_target, "Planetary days will become shorter.");
}

TEST(TaskData, ArcDigitAnswerKeysMapToLetters) {
  // Every record with answerKey "1".."5" in the real test file: gold = digit - 1.
  const TaskData t = load_default("arc_easy");
  std::ifstream in(tasks_dir("arc_easy/hf_test.jsonl"));
  std::string line;
  size_t i = 0, digits = 0;
  while (std::getline(in, line)) {
    const json r = json::parse(line);
    const std::string key = r["answerKey"];
    if (key >= "1" && key <= "5") {
      ++digits;
      EXPECT_EQ(t.eval_docs[i].gold, key[0] - '1') << r["id"];
      EXPECT_EQ(t.eval_docs[i].train_target, r["choices"]["text"][static_cast<size_t>(key[0] - '1')].get<std::string>());
    }
    ++i;
  }
  EXPECT_EQ(digits, 97u);
}

TEST(TaskData, HellaswagFirstRecordOfTheTextLayout) {
  const TaskData t = load_default("hellaswag");
  EXPECT_EQ(t.layout, "hellaswag_text");
  const TaskDoc& d = t.eval_docs[0];
  // Harness: preprocess("Roof shingle removal" + ": " + "A man is sitting on a roof." + " " + "he".capitalize())
  EXPECT_EQ(d.eval_context, "Roof shingle removal: A man is sitting on a roof. He");
  EXPECT_EQ(d.continuations,
            (std::vector<std::string>{" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                                      " is holding a rubik's cube.", " starts pulling up roofing on a roof."}));
  EXPECT_EQ(d.gold, 3);
  EXPECT_EQ(d.train_context, "Roof shingle removal: A man is sitting on a roof. He");
  EXPECT_EQ(d.train_target, "starts pulling up roofing on a roof.");
  // The bracketed span klosax left in place is removed as the harness regex does.
  bool found = false;
  for (const auto& x : t.eval_docs) {
    if (x.eval_context.rfind("Family Life: How to entertain a toddler.", 0) == 0 &&
        x.eval_context.find("Visit a site like") != std::string::npos) {
      found = true;
      EXPECT_EQ(x.eval_context.find('['), std::string::npos) << x.eval_context;
      EXPECT_NE(x.eval_context.find("Visit a site like to find"), std::string::npos) << x.eval_context;
    }
  }
  EXPECT_TRUE(found);
}

TEST(TaskData, WebqsFirstRecord) {
  const TaskData t = load_default("webqs");
  EXPECT_EQ(t.layout, "webqs_hf_jsonl");
  const TaskDoc& d = t.eval_docs[0];
  EXPECT_EQ(d.task, "webqs");
  EXPECT_EQ(d.kind, TaskKind::kGreedyAlias);
  EXPECT_FALSE(d.normalized_metric);
  EXPECT_EQ(d.eval_context, "Question: what does jamaican people speak?\nAnswer:");
  EXPECT_EQ(d.continuations, (std::vector<std::string>{" Jamaican Creole English Language", " Jamaican English"}));
  EXPECT_EQ(d.train_context, "Question: what does jamaican people speak?\nAnswer:");
  EXPECT_EQ(d.train_target, " Jamaican Creole English Language");  // leading space, answers[0]
}

TEST(TaskData, WebqsAliasPruningAndDatasetOrderTarget) {
  EXPECT_EQ(webqs_prune_aliases({"Jamaican", "Jamaica"}), (std::vector<std::string>{"Jamaica"}));
  EXPECT_EQ(webqs_prune_aliases({"b", "ab", "a", "abc", "B"}), (std::vector<std::string>{"B", "a", "b"}));
  // Code point order: "Z" (U+005A) < "a" < "é" (U+00E9).
  EXPECT_EQ(webqs_prune_aliases({"\xC3\xA9t\xC3\xA9", "Zoo", "apple"}),
            (std::vector<std::string>{"Zoo", "apple", "\xC3\xA9t\xC3\xA9"}));
  test::TempDir tmp;
  write_file(tmp.file("w.jsonl"), R"({"question": "who?", "answers": ["Jamaican", "Zed", "Jamaica"]})" "\n");
  const TaskDoc d = load_task("web_questions", tmp.file("w.jsonl")).eval_docs[0];
  EXPECT_EQ(d.choices, (std::vector<std::string>{"Jamaica", "Zed"}));
  EXPECT_EQ(d.train_target, " Jamaican");
}

TEST(TaskData, RaceFirstArticle) {
  const json doc = json::parse(read_text_file(tasks_dir("race/expmrc-race-dev.json")));
  const std::string article = doc["data"][0]["article"];
  const TaskData t = load_default("race");
  const TaskDoc& d = t.eval_docs[0];
  EXPECT_EQ(d.id, "00052cc8");
  EXPECT_EQ(d.eval_context, "Article: " + article + "\n\n" +
                                "Question: The first two paragraphs tell us that in Scotland ______.\n"
                                "Answer: schools used to have no lessons on sleep\n"
                                "Question: According to the charity Sleep Scotland, ________.\n"
                                "Answer: less sleep may make teenagers heavy\n"
                                "The underlined words \xE2\x80\x9Chas decreased\xE2\x80\x9D probably mean "
                                "\xE2\x80\x9C _____ \xE2\x80\x9D.");
  EXPECT_EQ(d.continuations, (std::vector<std::string>{" has gone down", " has been wasted", " has come up",
                                                       " has been used up"}));
  EXPECT_EQ(d.gold, 0);
  EXPECT_FALSE(d.normalized_metric);
  // Training: one example per question.
  EXPECT_EQ(t.train_docs[0].train_context, "Article: " + article + "\n\n" +
                                               "Question: The first two paragraphs tell us that in Scotland ______."
                                               "\n\nAnswer:");
  EXPECT_EQ(t.train_docs[0].train_target, "schools used to have no lessons on sleep");
  EXPECT_EQ(t.train_docs[1].train_target, "less sleep may make teenagers heavy");
  EXPECT_EQ(t.train_docs[2].train_target, "has gone down");
}

TEST(TaskData, RaceClozeQuirkAndHfRowsAgree) {
  test::TempDir tmp;
  const json art = {{"id", "a1"},
                    {"article", "Tom went home."},
                    {"questions", {"What did Tom do?", "Tom felt  _  .", "Which is the best title?"}},
                    {"options", {{"went home", "ran", "sat", "ate"}, {"sad", "happy", "cold", "tired"},
                                 {"Home", "Tom", "Day", "Run"}}},
                    {"answers", {"A", "B", "C"}}};
  write_file(tmp.file("a1.txt"), art.dump());
  const TaskData t = load_task("race", tmp.file("a1.txt"));
  EXPECT_EQ(t.layout, "race_original_json");
  // LM_EVAL.md 3.7 worked example.
  EXPECT_EQ(t.eval_docs[0].eval_context,
            "Article: Tom went home.\n\nQuestion: What did Tom do?\nAnswer: went home\n _  .happy\n"
            "Which is the best title?");
  EXPECT_EQ(t.eval_docs[0].gold, 2);
  EXPECT_EQ(t.train_docs[1].train_context, "Article: Tom went home.\n\nQuestion: Tom felt  _  .\n\nAnswer:");
  EXPECT_EQ(t.train_docs[1].train_target, "happy");

  // The same article as HF rows (one per question) in a JSONL file, plus a second article.
  std::string rows;
  for (int i = 0; i < 3; ++i)
    rows += json{{"example_id", "a1"}, {"article", "Tom went home."}, {"question", art["questions"][i]},
                 {"options", art["options"][i]}, {"answer", art["answers"][i]}}.dump() + "\n";
  rows += json{{"article", "Other."}, {"question", "Q?"}, {"options", {"w", "x", "y", "z"}}, {"answer", "D"}}.dump() +
          "\n";
  write_file(tmp.file("rows.jsonl"), rows);
  const TaskData h = load_task("race", tmp.file("rows.jsonl"));
  EXPECT_EQ(h.layout, "race_hf_jsonl");
  ASSERT_EQ(h.eval_docs.size(), 2u);
  ASSERT_EQ(h.train_docs.size(), 4u);
  expect_same_doc(h.eval_docs[0], t.eval_docs[0]);
  for (size_t i = 0; i < 3; ++i) expect_same_doc(h.train_docs[i], t.train_docs[i]);
  EXPECT_EQ(h.eval_docs[1].eval_context, "Article: Other.\n\nQ?");

  // A directory of original per-article files.
  fs::create_directories(tmp.file("dir"));
  write_file(tmp.file("dir/1.txt"), art.dump());
  write_file(tmp.file("dir/2.txt"), art.dump());
  EXPECT_EQ(load_task("race", tmp.file("dir")).eval_docs.size(), 2u);
}

// ------------------------------------------------------------------ layouts agree

TEST(TaskData, PiqaOriginalPairAgreesWithHfLayout) {
  const TaskData hf = load_default("piqa");
  const TaskData orig = load_task("piqa", tasks_dir("piqa/valid.jsonl"));
  EXPECT_EQ(orig.layout, "piqa_original_jsonl+labels");
  TaskReadOptions o;
  o.labels_path = tasks_dir("piqa/valid-labels.lst");
  const TaskData ai2 = load_task("piqa", tasks_dir("piqa/ai2_physicaliqa_dev.jsonl"), o);
  ASSERT_EQ(orig.eval_docs.size(), hf.eval_docs.size());
  ASSERT_EQ(ai2.eval_docs.size(), hf.eval_docs.size());
  for (size_t i = 0; i < hf.eval_docs.size(); ++i) {
    expect_same_doc(orig.eval_docs[i], hf.eval_docs[i]);
    expect_same_doc(ai2.eval_docs[i], hf.eval_docs[i]);
  }
  EXPECT_EQ(ai2.eval_docs[0].id, "c36c629e-12e9-43cc-8936-e1a96d869ab0");
  // No labels anywhere: a clear error.
  expect_error([&] { load_task("piqa", tasks_dir("piqa/ai2_physicaliqa_dev.jsonl")); },
               {"ai2_physicaliqa_dev-labels.lst", "not found", "labels_path"});
}

TEST(TaskData, OpenBookQaHfRowAgreesWithOriginal) {
  const TaskData orig = load_default("openbookqa");
  const TaskData complete = load_task("openbookqa", tasks_dir("openbookqa/Additional/test_complete.jsonl"));
  ASSERT_EQ(complete.eval_docs.size(), orig.eval_docs.size());
  for (size_t i = 0; i < orig.eval_docs.size(); ++i) expect_same_doc(complete.eval_docs[i], orig.eval_docs[i]);

  // HF rows of the first two original items, written from the original JSON.
  test::TempDir tmp;
  std::ifstream in(tasks_dir("openbookqa/Main/test.jsonl"));
  std::string line, rows;
  for (int i = 0; i < 2 && std::getline(in, line); ++i) {
    const json r = json::parse(line);
    json texts = json::array(), labels = json::array();
    for (const auto& c : r["question"]["choices"]) {
      texts.push_back(c["text"]);
      labels.push_back(c["label"]);
    }
    rows += json{{"id", r["id"]}, {"question_stem", r["question"]["stem"]},
                 {"choices", {{"text", texts}, {"label", labels}}}, {"answerKey", r["answerKey"]}}.dump() + "\n";
  }
  write_file(tmp.file("obqa.jsonl"), rows);
  const TaskData hf = load_task("openbookqa", tmp.file("obqa.jsonl"));
  EXPECT_EQ(hf.layout, "openbookqa_hf_jsonl");
  for (size_t i = 0; i < 2; ++i) expect_same_doc(hf.eval_docs[i], orig.eval_docs[i]);
}

TEST(TaskData, ArcOriginalRowAgreesWithHfRow) {
  test::TempDir tmp;
  // One item in both layouts, with a digit answer key and 5 choices.
  write_file(tmp.file("orig.jsonl"),
             R"({"id":"X1","question":{"stem":"Pick three.","choices":[{"text":"one","label":"1"},)"
             R"({"text":"two","label":"2"},{"text":"three","label":"3"},{"text":"four","label":"4"},)"
             R"({"text":"five","label":"5"}]},"answerKey":"3"})" "\n");
  write_file(tmp.file("hf.jsonl"),
             R"({"id": "X1", "question": "Pick three.", "choices": {"text": ["one", "two", "three", "four", "five"],)"
             R"( "label": ["1", "2", "3", "4", "5"]}, "answerKey": "3"})" "\n");
  const TaskData a = load_task("arc_challenge", tmp.file("orig.jsonl"));
  const TaskData b = load_task("arc_challenge", tmp.file("hf.jsonl"));
  EXPECT_EQ(a.layout, "arc_original_jsonl");
  EXPECT_EQ(b.layout, "arc_hf_jsonl");
  expect_same_doc(a.eval_docs[0], b.eval_docs[0]);
  EXPECT_EQ(a.eval_docs[0].gold, 2);
  EXPECT_EQ(a.eval_docs[0].train_target, "three");
  EXPECT_EQ(a.eval_docs[0].eval_context, "Question: Pick three.\nAnswer:");
}

TEST(TaskData, HellaswagHfRowsUseTheHarnessPreprocess) {
  test::TempDir tmp;
  const json first = {{"ind", 4},
                      {"activity_label", "Roof shingle removal"},
                      {"ctx_a", "A man is sitting on a roof."},
                      {"ctx_b", "he"},
                      {"endings", {"is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                                   "is holding a rubik's cube.", "starts pulling up roofing on a roof."}},
                      {"label", "3"}};
  const json wikihow = {{"activity_label", "Home and Garden"},
                        {"ctx_a", "[header] How to clean a grill [title] Heat the grill. [step] Turn it on."},
                        {"ctx_b", ""},
                        {"endings", {"Scrub it [step] well.", "  Wait  ", "x [substeps] y", "[title] Done"}},
                        {"label", 0}};
  const json shout = {{"activity_label", "A"}, {"ctx_a", "B."}, {"ctx_b", "tHE MAN"},
                      {"endings", {"a", "b", "c", "d"}}, {"label", "1"}};
  write_file(tmp.file("h.jsonl"), first.dump() + "\n" + wikihow.dump() + "\n" + shout.dump() + "\n");
  const TaskData h = load_task("hellaswag", tmp.file("h.jsonl"));
  EXPECT_EQ(h.layout, "hellaswag_hf_jsonl");
  // The HF row of the first item gives the same doc as the text layout.
  expect_same_doc(h.eval_docs[0], load_default("hellaswag").eval_docs[0]);
  EXPECT_EQ(h.eval_docs[0].id, "4");
  // LM_EVAL.md 3.4 example.
  EXPECT_EQ(h.eval_docs[1].eval_context, "Home and Garden: How to clean a grill. Heat the grill. Turn it on.");
  EXPECT_EQ(h.eval_docs[1].choices, (std::vector<std::string>{"Scrub it well.", "Wait", "x y", " Done"}));
  EXPECT_EQ(h.eval_docs[1].train_target, "Scrub it well.");
  // capitalize(): first letter upper, the rest lower.
  EXPECT_EQ(h.eval_docs[2].eval_context, "A: B. The man");
  EXPECT_EQ(hellaswag_preprocess("foo [step]"), "foo ");
  EXPECT_EQ(hellaswag_preprocess("a   b    c"), "a  b  c");
  EXPECT_EQ(hellaswag_preprocess("a [x\n] b [y]"), "a [x\n] b ");
}

TEST(TaskData, WebqsBrmsonLayoutAgreesWithHfLike) {
  const TaskData hf = load_default("webqs");
  const TaskData br = load_task("webqs", tasks_dir("webquestions/main/test.json"));
  EXPECT_EQ(br.layout, "webqs_brmson_json");
  ASSERT_EQ(br.eval_docs.size(), hf.eval_docs.size());
  for (size_t i = 0; i < hf.eval_docs.size(); ++i) expect_same_doc(br.eval_docs[i], hf.eval_docs[i]);
}

TEST(TaskData, SciqSyntheticRows) {
  test::TempDir tmp;
  const json a = {{"question", "What do mesophiles prefer?"}, {"distractor1", "cold"}, {"distractor2", "acid"},
                  {"distractor3", "salt"}, {"correct_answer", "moderate temperature"},
                  {"support", " Mesophiles grow best in moderate temperature."}};
  const json b = {{"question", "Q?"}, {"distractor1", "x"}, {"distractor2", "y"}, {"distractor3", "z"},
                  {"correct_answer", "w"}, {"support", ""}};
  write_file(tmp.file("sciq.jsonl"), a.dump() + "\n" + b.dump() + "\n");
  write_file(tmp.file("sciq.json"), json::array({a, b}).dump(2));
  const TaskData t = load_task("sciq", tmp.file("sciq.jsonl"));
  EXPECT_EQ(t.layout, "sciq_hf_jsonl");
  const TaskDoc& d = t.eval_docs[0];
  EXPECT_EQ(d.eval_context,
            "Mesophiles grow best in moderate temperature.\nQuestion: What do mesophiles prefer?\nAnswer:");
  EXPECT_EQ(d.continuations, (std::vector<std::string>{" cold", " acid", " salt", " moderate temperature"}));
  EXPECT_EQ(d.gold, 3);
  EXPECT_EQ(d.train_context,
            " Mesophiles grow best in moderate temperature.\nQuestion: What do mesophiles prefer?\nAnswer:");
  EXPECT_EQ(d.train_target, "moderate temperature");
  EXPECT_EQ(t.eval_docs[1].eval_context, "Question: Q?\nAnswer:");
  EXPECT_EQ(t.eval_docs[1].train_context, "\nQuestion: Q?\nAnswer:");
  const TaskData j = load_task("sciq", tmp.file("sciq.json"));
  EXPECT_EQ(j.layout, "sciq_hf_json");
  for (size_t i = 0; i < 2; ++i) expect_same_doc(j.eval_docs[i], t.eval_docs[i]);
  EXPECT_EQ(python_strip("\xC2\xA0 x \t\n"), "x");
}

// ------------------------------------------------------------------ malformed input

// Found by tests/fuzz/fuzz_tasks (seed number_overflow_race.jsonl): a number too large for
// a double ("3333333333333333333333333E3333") makes nlohmann throw out_of_range, not
// parse_error, and it escaped the reader instead of naming the file and line.
TEST(TaskData, NumberTooLargeIsOneClearError) {
  test::TempDir tmp;
  const std::string path = tmp.file("p.jsonl");
  write_file(path, R"({"goal": "g", "sol1": "a", "sol2": "b", "label": 1})" "\n"
                   R"({"goal": "g", "sol1": "a", "sol2": "b", "label": 1e400})" "\n");
  expect_error([&] { load_task("piqa", path); }, {path + ":2:", "not valid JSON", "number overflow", "1e400"});
  TaskReadOptions skip;
  skip.skip_malformed = true;
  EXPECT_EQ(load_task("piqa", path, skip).skipped, 1);
  write_file(tmp.file("r.json"), R"({"article": "a", "questions": [1e99999]})");
  expect_error([&] { load_task("race", tmp.file("r.json")); }, {tmp.file("r.json"), "not valid JSON", "number overflow"});
  // The fuzzer's input itself: a RACE file (jsonl) whose second line is such a number.
  const std::string crash = read_text_file(test::repo_root() + "/tests/fuzz/seeds/tasks/number_overflow_race.jsonl");
  write_file(tmp.file("race.jsonl"), crash.substr(1));  // byte 0 picks the task and layout
  expect_error([&] { load_task("race", tmp.file("race.jsonl")); }, {tmp.file("race.jsonl"), "not valid JSON"});
}

TEST(TaskData, MalformedLinesNameFileAndLine) {
  test::TempDir tmp;
  const std::string good = R"({"goal": "g", "sol1": "a", "sol2": "b", "label": 1})";
  const std::string path = tmp.file("p.jsonl");
  write_file(path, good + "\n" + R"({"goal": "g", "sol1": "a", "label": 0})" + "\n" + "{not json\n" + good +
                       "\n" + R"({"goal": "g", "sol1": "a", "sol2": "b", "label": 2})" + "\n\n" + good + "\n");
  expect_error([&] { load_task("piqa", path); }, {path + ":2:", "'sol2' missing"});
  TaskReadOptions skip;
  skip.skip_malformed = true;
  const TaskData t = load_task("piqa", path, skip);
  EXPECT_EQ(t.records, 7);
  EXPECT_EQ(t.skipped, 4);
  EXPECT_EQ(t.eval_docs.size(), 3u);
  ASSERT_EQ(t.skip_messages.size(), 4u);
  EXPECT_NE(t.skip_messages[1].find(path + ":3:"), std::string::npos);
  EXPECT_NE(t.skip_messages[1].find("not valid JSON"), std::string::npos);
  EXPECT_NE(t.skip_messages[2].find(path + ":5:"), std::string::npos);
  EXPECT_NE(t.skip_messages[2].find("label 2 out of range"), std::string::npos);
  EXPECT_NE(t.skip_messages[3].find(path + ":6: empty line"), std::string::npos);
  EXPECT_EQ(t.eval_docs[2].id, "p.jsonl:7");

  // Wrong types and keys in other layouts.
  write_file(tmp.file("arc.jsonl"), R"({"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "B"})");
  expect_error([&] { load_task("arc_easy", tmp.file("arc.jsonl")); },
               {tmp.file("arc.jsonl") + ":1:", "answerKey 'B'"});
  write_file(tmp.file("w.jsonl"), R"({"question": "q", "answers": "x"})" "\n");
  expect_error([&] { load_task("webqs", tmp.file("w.jsonl")); },
               {tmp.file("w.jsonl") + ":1:", "'answers'", "array of strings"});
  write_file(tmp.file("x.jsonl"), R"({"foo": 1})" "\n");
  expect_error([&] { load_task("piqa", tmp.file("x.jsonl")); }, {tmp.file("x.jsonl") + ":1", "{foo}", "PIQA"});
}

TEST(TaskData, MalformedHellaswagTextAndRaceWrapper) {
  test::TempDir tmp;
  const std::string item = "A: b c. the man\n1\ne0\ne1\ne2\ne3\n";
  write_file(tmp.file("h.txt"), item + "A: x\n7\ne0\ne1\ne2\ne3\n" + item + "A: y\n0\ne0\n");
  expect_error([&] { load_task("hellaswag", tmp.file("h.txt")); }, {tmp.file("h.txt") + ":7:", "label '7'"});
  TaskReadOptions skip;
  skip.skip_malformed = true;
  const TaskData t = load_task("hellaswag", tmp.file("h.txt"), skip);
  EXPECT_EQ(t.eval_docs.size(), 2u);
  EXPECT_EQ(t.skipped, 2);
  EXPECT_NE(t.skip_messages[1].find(":19: incomplete item"), std::string::npos) << t.skip_messages[1];
  EXPECT_EQ(t.eval_docs[0].eval_context, "A: b c. The man");

  json ok = json::object();
  ok["article"] = "T.";
  ok["questions"] = json::array({"q"});
  ok["options"] = json::array({json::array({"a", "b", "c", "d"})});
  ok["answers"] = json::array({"B"});
  json bad = ok;
  bad["answers"] = json::array({"B", "C"});
  json wrapper = json::object();
  wrapper["version"] = "v";
  wrapper["data"] = json::array({ok, bad, ok});
  write_file(tmp.file("r.json"), wrapper.dump());
  expect_error([&] { load_task("race", tmp.file("r.json")); }, {tmp.file("r.json") + ": data[1]", "differ in length"});
  const TaskData r = load_task("race", tmp.file("r.json"), skip);
  EXPECT_EQ(r.eval_docs.size(), 2u);
  EXPECT_EQ(r.skipped, 1);
  write_file(tmp.file("broken.json"), "{\"data\": [\n  {\"article\": }\n]}");
  expect_error([&] { load_task("race", tmp.file("broken.json")); }, {tmp.file("broken.json"), "line 2", "not valid JSON"});
}

// ------------------------------------------------------------------ validation split

TEST(TaskData, SplitValidationTakesTheFirstRoundedPercent) {
  auto docs = [](size_t n) {
    std::vector<TaskDoc> v(n);
    for (size_t i = 0; i < n; ++i) v[i].id = std::to_string(i);
    return v;
  };
  const auto s = split_validation(docs(3778));
  EXPECT_EQ(s.validation.size(), 189u);  // round(188.9)
  EXPECT_EQ(s.train.size(), 3589u);
  EXPECT_EQ(s.validation.front().id, "0");
  EXPECT_EQ(s.validation.back().id, "188");
  EXPECT_EQ(s.train.front().id, "189");
  EXPECT_EQ(split_validation(docs(10)).validation.size(), 0u);  // 0.5 -> 0 (half to even)
  EXPECT_EQ(split_validation(docs(30)).validation.size(), 2u);  // 1.5 -> 2
  EXPECT_EQ(split_validation(docs(50)).validation.size(), 2u);  // 2.5 -> 2
  EXPECT_EQ(split_validation(docs(20)).validation.size(), 1u);
  // Real webqs train: 3778 rows -> 189 / 3589.
  const TaskData w = load_task("webqs", tasks_dir("webquestions/hf_like_train.jsonl"));
  const auto ws = split_validation(w.train_docs, 5);
  EXPECT_EQ(ws.validation.size(), 189u);
  EXPECT_EQ(ws.validation[0].train_context, w.train_docs[0].train_context);
}

// ------------------------------------------------------------------ training batches

TEST(TaskTrain, SeparateTokenizationLabelsAndPadding) {
  const auto tok = load_tokenizer(gpt2_dir());
  const TaskData piqa = load_default("piqa");
  std::vector<TaskDoc> docs(piqa.train_docs.begin(), piqa.train_docs.begin() + 5);
  TaskTrainOptions o;
  o.pad_id = 50256;
  TaskTrainSource src(docs, *tok, o);
  ASSERT_EQ(src.size(), 5);
  for (int64_t i = 0; i < 5; ++i) {
    auto ctx = tok->encode(docs[i].train_context);
    const auto tgt = tok->encode(docs[i].train_target);
    ctx.insert(ctx.end(), tgt.begin(), tgt.end());
    EXPECT_EQ(src.ids(i), ctx);  // no EOS, no BOS
    EXPECT_EQ(src.unscored_prefix(i), static_cast<int64_t>(tok->encode(docs[i].train_context).size()));
  }
  const Batch b = src.batch({0, 1, 2});
  int64_t longest = 0, real = 0;
  for (int64_t i = 0; i < 3; ++i) {
    longest = std::max<int64_t>(longest, src.ids(i).size());
    real += src.ids(i).size();
  }
  const int64_t T = (longest + 7) / 8 * 8;
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, T}));
  ASSERT_TRUE(b.attention_mask.defined());
  EXPECT_EQ(b.tokens, real);
  for (int64_t r = 0; r < 3; ++r) {
    const auto& ids = src.ids(r);
    const int64_t n = ids.size(), u = src.unscored_prefix(r);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t in = b.input_ids[r][t].item<int64_t>(), lab = b.labels[r][t].item<int64_t>();
      const int64_t m = b.attention_mask[r][t].item<int64_t>();
      if (t < u) {
        EXPECT_EQ(lab, -100);
        EXPECT_EQ(m, 1);
      } else if (t < n) {
        EXPECT_EQ(lab, ids[t]);
        EXPECT_EQ(in, ids[t]);
        EXPECT_EQ(m, 1);
      } else {
        EXPECT_EQ(in, 50256);
        EXPECT_EQ(lab, -100);
        EXPECT_EQ(m, 0);
      }
    }
  }
}

TEST(TaskTrain, PrefixTokenTargetSpaceAndTruncation) {
  const auto tok = load_tokenizer(gpt2_dir());
  TaskDoc d;
  d.task = "webqs";
  d.id = "w";
  d.train_context = "Question: what does jamaican people speak?\nAnswer:";
  d.train_target = " Jamaican Creole English Language";
  TaskTrainOptions o;
  o.prefix_token = 2;  // OPT's "</s>"
  TaskTrainSource src({d}, *tok, o);
  const auto ctx = tok->encode(d.train_context);
  const auto tgt = tok->encode(d.train_target);
  EXPECT_EQ(src.ids(0).front(), 2);
  EXPECT_EQ(src.unscored_prefix(0), static_cast<int64_t>(ctx.size()) + 1);
  EXPECT_EQ(tgt.front(), tok->encode(" Jamaican").front());  // the "ĠJamaican" form
  EXPECT_EQ(src.ids(0).back(), tgt.back());                  // no EOS

  // Truncated on the right at block_size; the batch length is capped at block_size.
  TaskTrainOptions small;
  small.block_size = static_cast<int64_t>(ctx.size()) + 2;
  TaskTrainSource cut({d}, *tok, small);
  EXPECT_EQ(cut.truncated(), 1);
  EXPECT_EQ(cut.without_target(), 0);
  EXPECT_EQ(cut.ids(0).size(), ctx.size() + 2);
  const Batch b = cut.batch({0});
  EXPECT_EQ(b.input_ids.size(1), small.block_size);  // not rounded past block_size
  EXPECT_FALSE(b.attention_mask.defined());           // nothing padded
  EXPECT_EQ(b.labels[0][small.block_size - 1].item<int64_t>(), tgt[1]);
  small.block_size = static_cast<int64_t>(ctx.size());
  TaskTrainSource gone({d}, *tok, small);
  EXPECT_EQ(gone.without_target(), 1);
  EXPECT_EQ((gone.batch({0}).labels != -100).sum().item<int64_t>(), 0);

  TaskDoc empty = d;
  empty.train_target.clear();
  expect_error([&] { TaskTrainSource({empty}, *tok, o); }, {"doc w", "empty training target"});
}

// ------------------------------------------------------------------ corpora

TEST(Corpus, CacheReuseInvalidationAndBlocks) {
  const auto tok = load_tokenizer(gpt2_dir());
  test::TempDir tmp;
  const std::string src = tmp.file("input.txt");
  fs::copy_file(test::shared_path("data/corpora/tinyshakespeare/input.txt"), src);
  CorpusOptions o;
  o.cache_dir = tmp.file("cache");
  o.tokenizer_path = gpt2_dir();
  const CorpusTokens first = load_corpus_tokens(src, *tok, o);
  EXPECT_EQ(first.cache_status, "built");
  EXPECT_EQ(first.documents, 1);
  const auto direct = tok->encode(read_text_file(src));
  ASSERT_EQ(first.ids.size(), direct.size());
  for (size_t i = 0; i < direct.size(); i += 997) EXPECT_EQ(first.ids[i], direct[i]);
  EXPECT_EQ(file_size(first.cache_path), 64 + 4 * direct.size());

  const CorpusTokens again = load_corpus_tokens(src, *tok, o);
  EXPECT_EQ(again.cache_status, "hit");
  EXPECT_EQ(again.ids, first.ids);

  // HF group_texts: floor(n / 1024) blocks, remainder dropped.
  const LmBlockSource blocks(first.ids, 1024);
  EXPECT_EQ(blocks.size(), static_cast<int64_t>(direct.size() / 1024));
  const Batch b = blocks.batch({0, 3});
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{2, 1024}));
  EXPECT_TRUE(b.labels.equal(b.input_ids));
  EXPECT_FALSE(b.attention_mask.defined());
  EXPECT_EQ(b.input_ids[1][5].item<int64_t>(), first.ids[3 * 1024 + 5]);
  EXPECT_EQ(b.tokens, 2048);
  EXPECT_EQ(group_texts(10, 4), (std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 4}}));
  EXPECT_EQ(group_texts(3, 4), (std::vector<std::pair<int64_t, int64_t>>{{0, 3}}));

  // Options, source and tokenizer changes each invalidate the cache.
  CorpusOptions sep = o;
  sep.separator_id = 50256;
  const CorpusTokens with_sep = load_corpus_tokens(src, *tok, sep);
  EXPECT_EQ(with_sep.cache_status, "rebuilt: options changed");
  EXPECT_EQ(with_sep.ids.size(), direct.size() + 1);
  EXPECT_EQ(with_sep.ids.back(), 50256);
  {
    std::ofstream app(src, std::ios::app);
    app << "\nEXTRA: more text.\n";
  }
  EXPECT_EQ(load_corpus_tokens(src, *tok, o).cache_status, "rebuilt: source changed");
  EXPECT_EQ(load_corpus_tokens(src, *tok, o).cache_status, "hit");
  const std::string tokdir = tmp.file("tok");
  fs::create_directories(tokdir);
  fs::copy_file(gpt2_dir() + "/encoder.json", tokdir + "/encoder.json");
  fs::copy_file(gpt2_dir() + "/vocab.bpe", tokdir + "/vocab.bpe");
  CorpusOptions other = o;
  other.tokenizer_path = tokdir;
  EXPECT_EQ(load_corpus_tokens(src, *tok, other).cache_status, "rebuilt: tokenizer files changed");
  // A truncated cache file is rebuilt, not trusted.
  fs::resize_file(first.cache_path, 100);
  EXPECT_EQ(load_corpus_tokens(src, *tok, other).cache_status, "rebuilt: size does not match its token count");
  // So is one of the right size with a token changed (its ids' checksum), with the same ids.
  const std::vector<int32_t> whole = load_corpus_tokens(src, *tok, other).ids;
  {
    std::fstream f(first.cache_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 4);  // the second id, after the 64-byte header
    const int32_t changed = whole.at(1) == 7 ? 8 : 7;
    f.write(reinterpret_cast<const char*>(&changed), sizeof changed);
  }
  const CorpusTokens repaired = load_corpus_tokens(src, *tok, other);
  EXPECT_EQ(repaired.cache_status, "rebuilt: damaged (checksum of its ids does not match)");
  EXPECT_EQ(repaired.ids, whole);
  CorpusOptions nopath = o;
  nopath.tokenizer_path.clear();
  expect_error([&] { load_corpus_tokens(src, *tok, nopath); }, {"tokenizer_path"});
}

TEST(Corpus, JsonlDocumentsAndErrors) {
  const auto tok = load_tokenizer(gpt2_dir());
  test::TempDir tmp;
  write_file(tmp.file("c.jsonl"), R"({"text": "Hello world."})" "\n" R"({"text": " Second one", "id": 2})" "\n");
  CorpusOptions o;
  o.separator_id = 50256;
  o.prefix_id = 2;
  const CorpusTokens t = load_corpus_tokens(tmp.file("c.jsonl"), *tok, o);
  EXPECT_EQ(t.documents, 2);
  EXPECT_EQ(t.cache_status, "none");
  std::vector<int32_t> want = {2};
  for (auto id : tok->encode("Hello world.")) want.push_back(static_cast<int32_t>(id));
  want.push_back(50256);
  want.push_back(2);
  for (auto id : tok->encode(" Second one")) want.push_back(static_cast<int32_t>(id));
  want.push_back(50256);
  EXPECT_EQ(t.ids, want);
  EXPECT_EQ(tokenize_documents({"Hello world.", " Second one"}, *tok, 2, 50256), want);

  write_file(tmp.file("bad.jsonl"), R"({"text": "ok"})" "\n" R"({"body": "x"})" "\n");
  expect_error([&] { load_corpus_tokens(tmp.file("bad.jsonl"), *tok, o); },
               {tmp.file("bad.jsonl") + ":2:", "key 'text' missing"});
  write_file(tmp.file("num.jsonl"), R"({"text": 5})" "\n");
  expect_error([&] { load_corpus_tokens(tmp.file("num.jsonl"), *tok, o); },
               {tmp.file("num.jsonl") + ":1:", "key 'text'", "expected a string"});
}

}  // namespace
}  // namespace ot
