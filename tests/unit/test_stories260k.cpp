// tests/unit/test_stories260k.cpp: a real pretrained model end to end. `ot convert llama2c`
// imports karpathy's stories260K (llama2.c format) into an HF LLaMA directory; greedy
// `ot generate` must then reproduce llama2.c's own output byte for byte and token for
// token (goldens in ../shared/data/models/stories260K/golden).
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "util/fs.h"

namespace {

using ot::test::run_cli;
using ot::test::shared_path;

class Stories260K : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ot::test::TempDir();
    const std::string m = shared_path("data/models/stories260K/");
    auto r = run_cli("convert llama2c --checkpoint " + m + "stories260K.bin --tokenizer " + m +
                     "tok512.bin --out " + dir_->file("hf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    goldens_ = new nlohmann::json(nlohmann::json::parse(ot::read_text_file(m + "golden/greedy_goldens.json")));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete goldens_;
  }
  static void check_case(size_t index, int new_tokens) {
    const auto& c = (*goldens_)["cases"][index];
    std::string prompt = c["prompt"].get<std::string>();
    auto r = run_cli("generate --model " + dir_->file("hf") + " --prompt '" + prompt +
                     "' --max-new-tokens " + std::to_string(new_tokens) + " --temperature 0 --print-ids");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c["stdout"].get<std::string>());
    auto ids = nlohmann::json::parse(r.err.substr(r.err.rfind('[')));
    EXPECT_EQ(ids, c["token_ids"]);
  }
  static ot::test::TempDir* dir_;
  static nlohmann::json* goldens_;
};
ot::test::TempDir* Stories260K::dir_ = nullptr;
nlohmann::json* Stories260K::goldens_ = nullptr;

// llama2.c's -n counts positions including the prompt: 200 steps from BOS alone.
TEST_F(Stories260K, GreedyFromEmptyPromptMatchesLlama2c) { check_case(0, 200); }

// -n 64 with the 5 prompt ids (BOS + 4) leaves 60 generated tokens.
TEST_F(Stories260K, GreedyFromOnceUponATimeMatchesLlama2c) { check_case(1, 60); }

}  // namespace
