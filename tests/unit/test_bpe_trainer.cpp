// tests/unit/test_bpe_trainer.cpp: the byte-level BPE trainer on hand-checkable corpora
// (first merges, tie rule, non-overlapping merges, special tokens), the written files loaded
// back with load_tokenizer, determinism, option errors and `ot train-tokenizer`.
#include <string>
#include <vector>

#include "test_support.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using test::expect_error;
using test::write_file;
using namespace std::string_literals;

BpeTrainerOptions options(int64_t vocab_size, int64_t min_frequency = 2) {
  BpeTrainerOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  return o;
}

std::vector<std::string> merge_strings(const TrainedBpe& bpe) {
  std::vector<std::string> out;
  for (const auto& m : bpe.merges) out.push_back(bpe.vocab_string(m.left) + " " + bpe.vocab_string(m.right));
  return out;
}

// Natural lines (ASCII, Latin-1 range letters, CJK, emoji, tabs, digits) plus 3000
// pseudo-random words built from syllables, so that hundreds of merges are possible.
std::string mixed_corpus() {
  std::string text;
  for (int i = 0; i < 20; ++i) {
    text += "The quick brown fox jumps over the lazy dog. It's the fox's den, isn't it?\n";
    text += "Naïve café owners serve crème brûlée; 日本語のテキスト, Ünïcödé and emoji 🙂🙂.\n";
    text += "  indented line\twith tabs and 12345 numbers, $3.50 each...\n\n";
  }
  const std::vector<std::string> syllables = {"ka", "to", "ri", "mu", "sen", "lo", "pa", "qui", "zz", "é", "日本", "ñe"};
  uint32_t state = 12345;
  auto next = [&](uint32_t n) {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) % n;
  };
  for (int w = 0; w < 3000; ++w) {
    const uint32_t len = 1 + next(4);
    for (uint32_t k = 0; k < len; ++k) text += syllables[next(static_cast<uint32_t>(syllables.size()))];
    text += next(10) == 0 ? ".\n" : " ";
  }
  return text;
}

TEST(BpeTrainer, FirstMergesOfATinyCorpus) {
  // Words: "ab" x1, " ab" x2, " abc" x1. Pairs: (a,b) 4, (' ',a) 3, (b,c) 1.
  // Merge 1: a+b (4). Then (' ',ab) 3, (ab,c) 1. Merge 2: ' '+ab (3). Then (' ab',c) 1 < 2.
  TrainedBpe bpe = train_byte_bpe({"ab ab ab abc"}, options(400));
  ASSERT_EQ(merge_strings(bpe), (std::vector<std::string>{"a b", "Ġ ab"}));
  EXPECT_EQ(bpe.merges[0].count, 4);
  EXPECT_EQ(bpe.merges[1].count, 3);
  EXPECT_EQ(bpe.stopped_by, "min_frequency");
  EXPECT_EQ(bpe.words, 4u);
  EXPECT_EQ(bpe.distinct_words, 3u);
  EXPECT_EQ(bpe.training_bytes, 12u);
  // Ids: </s> = 0, byte b = 1 + b, then the merged tokens.
  ASSERT_EQ(bpe.tokens.size(), 1u + 256u + 2u);
  EXPECT_EQ(bpe.tokens[0], "</s>");
  EXPECT_EQ(bpe.tokens[1 + 'a'], "a");
  EXPECT_EQ(bpe.tokens[257], "ab");
  EXPECT_EQ(bpe.tokens[258], " ab");
  EXPECT_EQ(bpe.merges[1].left, 1 + ' ');
  EXPECT_EQ(bpe.merges[1].right, 257);
  EXPECT_EQ(bpe.merges[1].result, 258);

  test::TempDir dir;
  write_byte_bpe(bpe, dir.path());
  EXPECT_EQ(read_text_file(dir.file("merges.txt")), "#version: 0.2\na b\nĠ ab\n");
  auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(tok->encode("ab abc"), (std::vector<int64_t>{257, 258, 1 + 'c'}));
}

TEST(BpeTrainer, VocabularySizeStopsTraining) {
  TrainedBpe bpe = train_byte_bpe({"ab ab ab abc"}, options(258));
  EXPECT_EQ(merge_strings(bpe), (std::vector<std::string>{"a b"}));
  EXPECT_EQ(bpe.stopped_by, "vocab_size");
  EXPECT_EQ(bpe.tokens.size(), 258u);
}

TEST(BpeTrainer, TiesGoToTheSmallerLeftThenRightToken) {
  // Every pair occurs once: (x,y), (' ',y), (y,x). ' ' < 'x' < 'y' as bytes, so ' '+y first;
  // then (x,y) and (' y',x) tie again and " y" < "x" picks the second; (x,y) comes last.
  TrainedBpe bpe = train_byte_bpe({"xy yx"}, options(400, 1));
  EXPECT_EQ(merge_strings(bpe), (std::vector<std::string>{"Ġ y", "Ġy x", "x y"}));
  EXPECT_EQ(bpe.stopped_by, "no pairs");
  // Equal counts and equal left tokens: the smaller right token wins ("a b" before "a c").
  TrainedBpe tie = train_byte_bpe({"ac\nab"}, options(258, 1));
  EXPECT_EQ(merge_strings(tie), (std::vector<std::string>{"a b"}));
}

TEST(BpeTrainer, OccurrencesInOneWordMergeLeftToRightWithoutOverlap) {
  // "aaa" has two overlapping (a,a) occurrences (count 2); merging gives "aa a", leaving
  // (aa,a) with count 1 < min_frequency.
  TrainedBpe bpe = train_byte_bpe({"aaa"}, options(400));
  EXPECT_EQ(merge_strings(bpe), (std::vector<std::string>{"a a"}));
  EXPECT_EQ(bpe.merges[0].count, 2);
  test::TempDir dir;
  write_byte_bpe(bpe, dir.path());
  auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->encode("aaa"), (std::vector<int64_t>{257, 1 + 'a'}));
}

TEST(BpeTrainer, TrainedDirectoryLoadsAndRoundTrips) {
  const std::string corpus = mixed_corpus();
  TrainedBpe bpe = train_byte_bpe({corpus}, options(600));
  EXPECT_EQ(bpe.tokens.size(), 600u);
  test::TempDir dir;
  write_byte_bpe(bpe, dir.path());
  for (const char* f : {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"})
    EXPECT_TRUE(file_exists(dir.file(f))) << f;
  auto tok = load_tokenizer(dir.path());
  ASSERT_EQ(tok->kind(), "byte_bpe");
  EXPECT_EQ(tok->vocab_size(), 600);
  const std::vector<std::string> texts = {
      corpus,
      "Unseen words: zebra quizzically vexed, Ωμέγα, привет мир, 😀 and \xF0\x9F\xA4\x96.",
      "invalid \xFF\xC3 bytes and a NUL \0 inside"s,
      "</s>the fox</s></s>",
      "",
  };
  for (const auto& t : texts) EXPECT_EQ(tok->decode(tok->encode(t)), t);
  // The merges are used: the training text takes far fewer tokens than bytes.
  EXPECT_LT(tok->encode(corpus).size() * 3, corpus.size());
  // vocab.json + merges.txt read on their own give the same ids for plain text.
  auto pair = load_tokenizer(dir.file("vocab.json"));
  EXPECT_EQ(pair->encode(corpus), tok->encode(corpus));
  // Every merged token is a vocabulary entry with the id the trainer gave it.
  auto* bb = dynamic_cast<ByteBpeTokenizer*>(tok.get());
  ASSERT_NE(bb, nullptr);
  for (std::size_t id = 0; id < bpe.tokens.size(); ++id)
    ASSERT_EQ(bb->token_to_id(bpe.vocab_string(static_cast<int64_t>(id))), static_cast<int64_t>(id));
}

TEST(BpeTrainer, SpecialTokensAreSingleIdsAndNeverLearned) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "story</s>";
  BpeTrainerOptions o = options(400);
  o.special_tokens = {"</s>", "<pad>"};
  TrainedBpe bpe = train_byte_bpe({text}, o);
  ASSERT_EQ(bpe.num_special, 2);
  ASSERT_TRUE(bpe.eos_id().has_value());
  EXPECT_EQ(*bpe.eos_id(), 0);
  ASSERT_EQ(bpe.tokens.size(), 2u + 256u + 4u);  // four merges make "story" one token
  for (std::size_t id = 2 + 256; id < bpe.tokens.size(); ++id) {
    EXPECT_EQ(bpe.tokens[id].find('<'), std::string::npos) << bpe.tokens[id];
    EXPECT_EQ(bpe.tokens[id].find('>'), std::string::npos) << bpe.tokens[id];
  }
  EXPECT_EQ(bpe.words, 50u);  // "story" fifty times; the special tokens are not words
  test::TempDir dir;
  write_byte_bpe(bpe, dir.path());
  auto tok = load_tokenizer(dir.path());
  ASSERT_TRUE(tok->eos_id().has_value());
  EXPECT_EQ(*tok->eos_id(), 0);
  auto ids = tok->encode("story</s>x<pad>");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok->encode("story")[0]);
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(ids[3], 1);
  EXPECT_EQ(tok->decode(ids), "story</s>x<pad>");
  const std::string config = read_text_file(dir.file("tokenizer_config.json"));
  EXPECT_NE(config.find("\"eos_token\": \"</s>\""), std::string::npos) << config;
  EXPECT_NE(config.find("\"bos_token\": \"</s>\""), std::string::npos) << config;
}

TEST(BpeTrainer, TrainingIsDeterministic) {
  const std::string corpus = mixed_corpus();
  test::TempDir a, b;
  write_byte_bpe(train_byte_bpe({corpus, "second text"}, options(700)), a.path());
  write_byte_bpe(train_byte_bpe({corpus, "second text"}, options(700)), b.path());
  for (const char* f : {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"})
    EXPECT_EQ(read_text_file(a.file(f)), read_text_file(b.file(f))) << f;
}

TEST(BpeTrainer, BadOptionsAreErrors) {
  expect_error([] { train_byte_bpe({"text"}, options(256)); },
               {"vocab_size 256 is too small", "1 special token(s)", "expected vocab_size >= 257"});
  BpeTrainerOptions three = options(258);
  three.special_tokens = {"</s>", "<pad>", "<unk>"};
  expect_error([&] { train_byte_bpe({"text"}, three); }, {"vocab_size 258", "expected vocab_size >= 259"});
  expect_error([] { train_byte_bpe({"text"}, options(300, 0)); }, {"min_frequency 0", "expected an integer >= 1"});
  BpeTrainerOptions o = options(300);
  o.special_tokens = {"</s>", "</s>"};
  expect_error([&] { train_byte_bpe({"text"}, o); }, {"special token '</s>' is given twice"});
  o.special_tokens = {"a"};
  expect_error([&] { train_byte_bpe({"text"}, o); }, {"special token 'a' is one of the 256 byte symbols"});
  o.special_tokens = {""};
  expect_error([&] { train_byte_bpe({"text"}, o); }, {"special token #1 is empty"});
}

TEST(BpeTrainer, ReadingStopsAtMaxBytesOnACharacterBoundary) {
  test::TempDir dir;
  write_file(dir.file("a.txt"), "abc\xC3\xA9");  // "abcé": the 2-byte é starts at byte 3
  write_file(dir.file("b.txt"), "more");
  auto texts = read_training_texts({dir.file("a.txt"), dir.file("b.txt")}, 4);
  EXPECT_EQ(texts, (std::vector<std::string>{"abc"}));  // a cut file is the last one read
  texts = read_training_texts({dir.file("a.txt"), dir.file("b.txt")}, 7);
  EXPECT_EQ(texts, (std::vector<std::string>{"abc\xC3\xA9", "mo"}));
  texts = read_training_texts({dir.file("a.txt"), dir.file("b.txt")}, std::nullopt);
  EXPECT_EQ(texts, (std::vector<std::string>{"abc\xC3\xA9", "more"}));
  expect_error([&] { read_training_texts({dir.file("missing.txt")}, std::nullopt); },
               {"missing.txt: no such file"});
  write_file(dir.file("empty.txt"), "");
  expect_error([&] { read_training_texts({dir.file("empty.txt")}, std::nullopt); }, {"hold no text"});
}

TEST(BpeTrainer, CommandLine) {
  test::TempDir dir;
  write_file(dir.file("a.txt"), mixed_corpus());
  write_file(dir.file("b.txt"), "another file, with more words in it.\n");
  auto r = test::run_cli("train-tokenizer --input " + dir.file("a.txt") + " --input " + dir.file("b.txt") +
                         " --vocab-size 500 --special-token '<|endoftext|>' --out " + dir.file("tok"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("vocabulary size: 500 (1 special, 256 bytes, 243 merged)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("merges: 243"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes per token: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("in 2 file(s)"), std::string::npos) << r.out;
  auto tok = load_tokenizer(dir.file("tok"));
  EXPECT_EQ(tok->vocab_size(), 500);
  EXPECT_EQ(tok->encode("<|endoftext|>"), (std::vector<int64_t>{0}));
  // vocab.json + merges.txt alone also know <|endoftext|> as special.
  EXPECT_EQ(load_tokenizer(dir.file("tok/vocab.json"))->encode("a<|endoftext|>").size(), 2u);

  r = test::run_cli("train-tokenizer --input " + dir.file("a.txt") + " --vocab-size 100 --out " + dir.file("t2"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("vocab_size 100 is too small"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(dir.file("t2/vocab.json")));
  r = test::run_cli("train-tokenizer --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--vocab-size"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ot
