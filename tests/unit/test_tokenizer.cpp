// tests/unit/test_tokenizer.cpp: tokenizers against reference outputs (transformers'
// GPT2Tokenizer fixture, llama2.c goldens, libsentencepiece), malformed inputs, and the
// `ot tokenize` / `ot detokenize` subcommands.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"
#include "tokenizer/byte_bpe.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using test::expect_error;
using test::write_file;

std::string gpt2_dir() { return test::shared_path("data/tokenizers/gpt2"); }
std::string tok512() { return test::shared_path("data/models/stories260K/tok512.bin"); }
std::string llama2_dir() { return test::shared_path("data/tokenizers/llama2"); }

json read_json(const std::string& path) { return json::parse(read_text_file(path)); }



// ---- GPT-2 byte-level BPE vs transformers' slow GPT2Tokenizer ----

class Gpt2Fixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cases_ = new json(read_json(test::shared_path("fixtures/hf-parity/gpt2_tokenizer_cases.json")));
  }
  static void TearDownTestSuite() {
    delete cases_;
    cases_ = nullptr;
  }
  static void check_all(const Tokenizer& tok) {
    const json& cases = (*cases_)["cases"];
    ASSERT_EQ(cases.size(), 124u);
    for (const auto& c : cases) {
      const std::string text = c["text"].get<std::string>();
      const auto want = c["ids"].get<std::vector<int64_t>>();
      EXPECT_EQ(tok.encode(text), want) << "text: " << json(text).dump();
      EXPECT_EQ(tok.decode(want), text) << "decode of " << json(text).dump();
      EXPECT_EQ(tok.decode(want), c["decoded"].get<std::string>());
    }
  }
  static json* cases_;
};
json* Gpt2Fixture::cases_ = nullptr;

TEST_F(Gpt2Fixture, TokenizerEncoderJsonAndVocabBpeMatchTransformers) {
  auto tok = load_tokenizer(gpt2_dir());  // encoder.json + vocab.bpe
  ASSERT_EQ(tok->kind(), "byte_bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);
  check_all(*tok);
}

TEST_F(Gpt2Fixture, TokenizerHfTokenizerJsonMatchesTransformers) {
  test::TempDir dir;
  fs::create_symlink(fs::absolute(gpt2_dir() + "/hf_tokenizer.json"), dir.file("tokenizer.json"));
  auto tok = load_tokenizer(dir.path());
  ASSERT_EQ(tok->kind(), "byte_bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  check_all(*tok);
}

TEST_F(Gpt2Fixture, TokenizerSplitSpecialTokens) {
  auto tok = ByteBpeTokenizer::from_vocab_and_merges(gpt2_dir() + "/encoder.json", gpt2_dir() + "/vocab.bpe");
  tok->set_split_special_tokens(true);
  int checked = 0;
  for (const auto& c : (*cases_)["cases"]) {
    if (!c.contains("ids_split_special_tokens")) continue;
    EXPECT_EQ(tok->encode(c["text"].get<std::string>()), c["ids_split_special_tokens"].get<std::vector<int64_t>>());
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(ByteBpeTokenizer, PreTokenizerWhitespaceFollowsPythonRegex) {
  auto tok = ByteBpeTokenizer::from_vocab_and_merges(gpt2_dir() + "/encoder.json", gpt2_dir() + "/vocab.bpe");
  // U+0085 is White_Space for Python `regex`; U+FEFF is not.
  EXPECT_EQ(tok->pre_tokenize("a \xC2\x85" "b"), (std::vector<std::string>{"a", " ", "\xC2\x85", "b"}));
  EXPECT_EQ(tok->pre_tokenize("\xEF\xBB\xBF" "BOM x"),
            (std::vector<std::string>{"\xEF\xBB\xBF", "BOM", " x"}));
  // U+180E is not White_Space (PCRE2's own \s would say it is).
  EXPECT_EQ(tok->pre_tokenize("a \xE1\xA0\x8E"), (std::vector<std::string>{"a", " \xE1\xA0\x8E"}));
  EXPECT_EQ(tok->pre_tokenize("x   y\n"), (std::vector<std::string>{"x", "  ", " y", "\n"}));
  EXPECT_EQ(tok->pre_tokenize("I'll don't"), (std::vector<std::string>{"I", "'ll", " don", "'t"}));
}

TEST(ByteBpeTokenizer, InvalidUtf8RoundTripsByteByByte) {
  auto tok = load_tokenizer(gpt2_dir());
  const std::vector<std::string> inputs = {
      "abc\xFF" "def", "\xC3", "caf\xC3\xA9 \xE2\x82", "\xED\xA0\x80 surrogate", "\xF4\x90\x80\x80", "\x80\x80 x"};
  for (std::size_t i = 0; i < inputs.size(); ++i)
    EXPECT_EQ(tok->decode(tok->encode(inputs[i])), inputs[i]) << "input #" << i;
  // The valid parts are tokenized as usual: "abc" then the lone byte then "def".
  auto ids = tok->encode("abc\xFF" "def");
  auto abc = tok->encode("abc"), def = tok->encode("def");
  ASSERT_EQ(ids.size(), abc.size() + 1 + def.size());
  EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.begin() + abc.size()), abc);
  EXPECT_EQ(std::vector<int64_t>(ids.end() - def.size(), ids.end()), def);
}

TEST(ByteBpeTokenizer, LongInputsAndCacheAreConsistent) {
  auto tok = load_tokenizer(gpt2_dir());
  std::string text = read_text_file(test::shared_path("data/corpora/tinyshakespeare/input.txt")).substr(0, 20000);
  auto once = tok->encode(text);
  EXPECT_EQ(tok->encode(text), once);  // second pass is served from the cache
  EXPECT_EQ(tok->decode(once), text);
  std::string long_word(5000, 'a');
  EXPECT_EQ(tok->decode(tok->encode(long_word)), long_word);
}

// ---- llama2.c tokenizer.bin ----

TEST(Llama2cTokenizer, TokenizerPromptIdsMatchRunC) {
  auto tok = load_tokenizer(tok512());
  ASSERT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->encode("Once upon a time", true), (std::vector<int64_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("Once upon a time", false), (std::vector<int64_t>{403, 407, 261, 378}));
  EXPECT_TRUE(tok->encode("", false).empty());
  EXPECT_EQ(tok->encode("", true), (std::vector<int64_t>{1}));
}

TEST(Llama2cTokenizer, TokenizerDecodesGreedyGoldens) {
  auto tok = load_tokenizer(tok512());
  json g = read_json(test::shared_path("data/models/stories260K/golden/greedy_goldens.json"));
  for (const auto& c : g["cases"]) {
    auto ids = c["token_ids"].get<std::vector<int64_t>>();
    ASSERT_EQ(ids.front(), 1);
    // run.c prints decode(prev, next) for every position and one final newline.
    EXPECT_EQ(tok->decode(ids) + "\n", c["stdout"].get<std::string>()) << c["cmd"];
    std::string streamed;
    for (std::size_t i = 1; i < ids.size(); ++i) streamed += tok->decode_piece(ids[i - 1], ids[i]);
    EXPECT_EQ(streamed + "\n", c["stdout"].get<std::string>());
    if (c.contains("prompt_token_ids") && !c["prompt"].get<std::string>().empty()) {
      EXPECT_EQ(tok->encode(c["prompt"].get<std::string>(), true), c["prompt_token_ids"].get<std::vector<int64_t>>());
    }
  }
}

TEST(Llama2cTokenizer, TokenizerByteFallbackRoundTrips) {
  auto tok = load_tokenizer(tok512());
  for (const std::string& s : std::vector<std::string>{"Lily saw a cat.", "naïve café 😀", std::string("nul\0byte", 8), "\xFF\xFE bad utf8",
                        "  two  spaces\n\nnewlines"}) {
    auto ids = tok->encode(s, true);
    EXPECT_EQ(tok->decode(ids), s);
    // Without BOS the dummy-prefix space stays.
    EXPECT_EQ(tok->decode(tok->encode(s, false)), " " + s);
  }
  // "😀" is not a tok512 piece: its four bytes fall back to <0xF0> <0x9F> <0x98> <0x80>
  // (ids byte+3) after the dummy-prefix " " (410).
  EXPECT_EQ(tok->encode("\xF0\x9F\x98\x80", false), (std::vector<int64_t>{410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}));
}

// ---- sentencepiece vs the llama2.c export of the same vocabulary ----

TEST(SentencePieceTokenizer, TokenizerMatchesLlama2cExport) {
  auto sp = load_tokenizer(llama2_dir() + "/tokenizer.model");
  auto bin = load_tokenizer(llama2_dir() + "/tokenizer.bin");
  ASSERT_EQ(sp->kind(), "sentencepiece");
  ASSERT_EQ(bin->kind(), "llama2c");
  EXPECT_EQ(sp->vocab_size(), 32000);
  EXPECT_EQ(bin->vocab_size(), 32000);
  EXPECT_EQ(sp->bos_id(), 1);
  EXPECT_EQ(sp->eos_id(), 2);
  const std::vector<std::string> sentences = {
      "Once upon a time",
      "The quick brown fox jumps over the lazy dog.",
      "Offsite-Tuning adapts large language models without sharing the full weights.",
      "It was the best of times, it was the worst of times.",
      "Lily's mom said, \"Let's go to the park.\"",
      "In 1969, Neil Armstrong walked on the Moon; 3.14159 is pi.",
      "Hello world! How are you today?",
  };
  for (const auto& s : sentences) {
    auto ids = sp->encode(s, true);
    EXPECT_EQ(ids, bin->encode(s, true)) << s;
    EXPECT_EQ(ids.front(), 1);
    EXPECT_EQ(sp->decode(ids), s);
    EXPECT_EQ(bin->decode(ids), s);
    std::string streamed;
    for (std::size_t i = 1; i < ids.size(); ++i) streamed += sp->decode_piece(ids[i - 1], ids[i]);
    EXPECT_EQ(streamed, s);
  }
  EXPECT_EQ(sp->encode("Hello", false).front(), bin->encode("Hello", false).front());
}

// ---- malformed input ----

TEST(TokenizerErrors, MissingFileOrDirectory) {
  expect_error([] { load_tokenizer("/nonexistent/tok.bin"); }, {"/nonexistent/tok.bin", "no such file"});
  test::TempDir empty;
  expect_error([&] { load_tokenizer(empty.path()); }, {empty.path(), "no tokenizer found", "tokenizer.json",
                                                       "merges.txt", "tokenizer.model"});
  expect_error([&] { load_tokenizer(empty.path() + "/vocab.json"); }, {"vocab.json", "no such file"});
}

TEST(TokenizerErrors, TruncatedLlama2cBin) {
  test::TempDir dir;
  std::string data = read_text_file(tok512());
  write_file(dir.file("tok.bin"), data.substr(0, 1000));
  expect_error([&] { load_tokenizer(dir.file("tok.bin")); }, {dir.file("tok.bin"), "truncated"});
  write_file(dir.file("tiny.bin"), data.substr(0, 2));
  expect_error([&] { load_tokenizer(dir.file("tiny.bin")); }, {dir.file("tiny.bin"), "truncated", "max_token_length"});
  std::string bad = data;
  bad[4 + 4] = '\x7f';  // first token length byte -> huge length
  write_file(dir.file("badlen.bin"), bad);
  expect_error([&] { load_tokenizer(dir.file("badlen.bin")); }, {dir.file("badlen.bin"), "token 0", "length"});
}

TEST(TokenizerErrors, BadMergesLine) {
  test::TempDir dir;
  fs::copy_file(gpt2_dir() + "/encoder.json", dir.file("vocab.json"));
  write_file(dir.file("merges.txt"), "#version: 0.2\n\xC4\xA0 t\nlonely\n");
  expect_error([&] { load_tokenizer(dir.path()); },
               {dir.file("merges.txt") + ":3", "lonely", "expected two tokens"});
  write_file(dir.file("merges.txt"), "#version: 0.2\nnotatoken zz\n");
  expect_error([&] { load_tokenizer(dir.path()); }, {"merges.txt", "merge #1", "not in the vocabulary"});
}

TEST(TokenizerErrors, InvalidJson) {
  test::TempDir dir;
  write_file(dir.file("tokenizer.json"), "{\"model\": {\"vocab\": ");
  expect_error([&] { load_tokenizer(dir.path()); }, {dir.file("tokenizer.json"), "invalid JSON"});
  write_file(dir.file("tokenizer.json"), R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_error([&] { load_tokenizer(dir.path()); }, {dir.file("tokenizer.json"), "Unigram", "expected 'BPE'"});
  write_file(dir.file("tokenizer.json"),
             R"({"model": {"type": "BPE", "vocab": {"a": "x"}}, "pre_tokenizer": {"type": "ByteLevel"}})");
  expect_error([&] { load_tokenizer(dir.path()); }, {dir.file("tokenizer.json"), "model.vocab['a']", "integer id"});
  write_file(dir.file("tokenizer.json"),
             R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Metaspace"}})");
  expect_error([&] { load_tokenizer(dir.path()); }, {dir.file("tokenizer.json"), "Metaspace", "ByteLevel"});
  write_file(dir.file("tokenizer.json"),
             R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "ByteLevel"}})");
  expect_error([&] { load_tokenizer(dir.path()); }, {dir.file("tokenizer.json"), "byte 0x00", "256"});
  write_file(dir.file("tokenizer.model"), "not a protobuf");
  expect_error([&] { load_tokenizer(dir.file("tokenizer.model")); }, {dir.file("tokenizer.model"), "sentencepiece"});
}

TEST(TokenizerErrors, IdOutOfRange) {
  auto bpe = load_tokenizer(gpt2_dir());
  expect_error([&] { bpe->decode({15496, 50257}); }, {"encoder.json", "50257", "outside the vocabulary"});
  expect_error([&] { bpe->decode({-1}); }, {"-1", "outside the vocabulary"});
  auto l2c = load_tokenizer(tok512());
  expect_error([&] { l2c->decode({1, 512}); }, {tok512(), "512", "outside the vocabulary"});
  expect_error([&] { l2c->decode_piece(1, 9999); }, {tok512(), "9999"});
  auto sp = load_tokenizer(llama2_dir() + "/tokenizer.model");
  expect_error([&] { sp->decode({32000}); }, {"tokenizer.model", "32000", "outside the vocabulary"});
}

// ---- CLI ----

TEST(TokenizeCli, TokenizeAndDetokenize) {
  auto r = test::run_cli("tokenize --tokenizer " + gpt2_dir() + " --text 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[15496,995]\n");

  r = test::run_cli("tokenize --tokenizer " + tok512() + " --text 'Once upon a time' --bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,403,407,261,378]\n");

  r = test::run_cli("detokenize --tokenizer " + gpt2_dir() + " --ids '[15496, 995, 50256]'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello world<|endoftext|>");

  r = test::run_cli("detokenize --tokenizer " + tok512() + " --ids '[1,403,407,261,378]'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Once upon a time");
}

TEST(TokenizeCli, JsonlFilesRoundTrip) {
  test::TempDir dir;
  write_file(dir.file("in.txt"), "Hello world\n don't\n");
  auto r = test::run_cli("tokenize --tokenizer " + gpt2_dir() + " --input " + dir.file("in.txt") + " --jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[15496,995]\n[836,470]\n");
  write_file(dir.file("ids.jsonl"), r.out);
  r = test::run_cli("detokenize --tokenizer " + gpt2_dir() + " --input " + dir.file("ids.jsonl") + " --jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "\"Hello world\"\n\" don't\"\n");

  // Without --jsonl the whole file is one text, newlines included.
  r = test::run_cli("tokenize --tokenizer " + gpt2_dir() + " --input " + dir.file("in.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[15496,995,198,836,470,198]\n");
  write_file(dir.file("ids.json"), r.out);
  r = test::run_cli("detokenize --tokenizer " + gpt2_dir() + " --input " + dir.file("ids.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello world\n don't\n");
}

TEST(TokenizeCli, BadArguments) {
  auto r = test::run_cli("tokenize --tokenizer " + gpt2_dir());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);  // a usage error, not a failed command
  EXPECT_NE(r.err.find("exactly one of --text or --input"), std::string::npos) << r.err;

  r = test::run_cli("tokenize --tokenizer " + gpt2_dir() + " --text a --input /dev/null");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);

  r = test::run_cli("detokenize --tokenizer " + gpt2_dir() + " --ids '[1, 99999]'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("99999"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("outside the vocabulary"), std::string::npos) << r.err;

  r = test::run_cli("detokenize --tokenizer " + gpt2_dir() + " --ids '[1, '");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ids: invalid JSON"), std::string::npos) << r.err;

  r = test::run_cli("tokenize --tokenizer /nonexistent --text hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent"), std::string::npos) << r.err;

  for (const char* sub : {"tokenize", "detokenize"}) {
    r = test::run_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("--tokenizer"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace ot
