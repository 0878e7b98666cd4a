// tests/unit/test_cli_model.cpp: the model-facing CLI contract (`ot forward`, `ot inspect`,
// `ot generate`, help texts) and its behaviour on bad input: one clear message, a non-zero
// exit, and no output file left behind.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/safetensors.h"
#include "test_support.h"
#include "util/fs.h"

namespace {

using ot::test::run_cli;
using ot::test::shared_path;
namespace fs = std::filesystem;

using ot::test::fixture_dir;

std::string write_ids(const ot::test::TempDir& tmp, const std::string& json) {
  std::string p = tmp.file("ids.json");
  std::ofstream(p) << json;
  return p;
}

TEST(CliForward, WritesLogitsAndHiddenStatesMatchingTransformers) {
  ot::test::TempDir tmp;
  auto fx = nlohmann::json::parse(ot::read_text_file(shared_path("fixtures/hf-parity/llama.json")));
  nlohmann::json in = {{"input_ids", fx["input_ids"]}};
  std::string ids = write_ids(tmp, in.dump());
  std::string out = tmp.file("out.safetensors");
  auto r = run_cli("forward --model " + fixture_dir("llama") + " --input " + ids + " --output " + out + " --hidden-states");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = ot::SafetensorsFile::open(out);
  auto logits = f.tensor("logits");
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 16, 1000}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  // Spot-check against the reference at a few positions.
  for (int t : {0, 7, 15}) {
    for (int v : {0, 123, 999}) {
      EXPECT_NEAR(logits[0][t][v].item<double>(), fx["logits"][0][t][v].get<double>(), 1e-4);
      EXPECT_NEAR(logits[1][t][v].item<double>(), fx["logits"][1][t][v].get<double>(), 1e-4);
    }
  }
  EXPECT_TRUE(f.contains("embeddings"));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(f.contains("hidden_states." + std::to_string(i))) << i;
  EXPECT_FALSE(f.contains("hidden_states.4"));
}

TEST(CliForward, MissingModelDirectory) {
  ot::test::TempDir tmp;
  std::string ids = write_ids(tmp, R"({"input_ids": [[1, 2, 3]]})");
  std::string out = tmp.file("out.safetensors");
  auto r = run_cli("forward --model " + tmp.file("nope") + " --input " + ids + " --output " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope: model directory does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliForward, MalformedInputs) {
  ot::test::TempDir tmp;
  std::string out = tmp.file("out.safetensors");
  struct Case { std::string json, expect; };
  for (const Case& c : std::vector<Case>{
           {R"({"input_ids": [[1, 2, 3], [4, 5]]})", "row 1 has 2 entries but row 0 has 3"},
           {R"({"input_ids": [[1, 2, "x"]]})", "row 0 position 2: expected an integer"},
           {R"({"input_ids": [[1, 2, 3]], "attention_mask": [[1, 2, 1]]})", "expected only 0 and 1"},
           {R"({"input_ids": [[1, 2, 3]], "mask": [[1, 1, 1]]})", "unknown key 'mask'"},
           {R"({"input_ids": [[1, 2, 3]])", "not valid JSON"},
           {R"({"input_ids": [[1, 2, 1000]]})", "token id 1000 is outside the vocabulary [0, 1000)"}}) {
    std::string ids = write_ids(tmp, c.json);
    auto r = run_cli("forward --model " + fixture_dir("gpt2") + " --input " + ids + " --output " + out);
    EXPECT_EQ(r.exit_code, 1) << c.json;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.json << " -> " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line expected: " << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(CliForward, UnknownModelType) {
  ot::test::TempDir tmp;
  fs::create_directory(tmp.file("m"));
  std::ofstream(tmp.file("m/config.json")) << R"({"model_type": "t5", "vocab_size": 10})";
  std::string ids = write_ids(tmp, R"({"input_ids": [[1, 2, 3]]})");
  auto r = run_cli("forward --model " + tmp.file("m") + " --input " + ids + " --output " + tmp.file("o.safetensors"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model_type 't5' is not supported (expected one of opt, gpt2, bloom, llama, mistral, qwen2, gemma, phi3, vit, eva_vit, clip_vision_model, clip)"), std::string::npos) << r.err;
}

TEST(CliInspect, ReportsPartsAndCounts) {
  auto r = run_cli("inspect " + fixture_dir("opt") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model_type"], "opt");
  EXPECT_EQ(j["layers"], 4);
  // Count from the reference state dict (tied lm_head counted once, via the embeddings).
  auto fx = nlohmann::json::parse(ot::read_text_file(shared_path("fixtures/hf-parity/opt.json")));
  int64_t total = 0;
  for (auto it = fx["state_dict_keys"].begin(); it != fx["state_dict_keys"].end(); ++it) {
    if (it.key() == "lm_head.weight") continue;
    int64_t n = 1;
    for (auto d : it.value()) n *= d.get<int64_t>();
    total += n;
  }
  EXPECT_EQ(j["parameters"]["total"].get<int64_t>(), total);
  EXPECT_EQ(j["parameters"]["embeddings"].get<int64_t>() + j["parameters"]["blocks"].get<int64_t>() +
                j["parameters"]["head"].get<int64_t>(),
            total);
  auto text = run_cli("inspect " + fixture_dir("llama"));
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("4 heads (2 key/value)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("untied head"), std::string::npos) << text.out;
}

TEST(CliHelp, EverySubcommandHasHelp) {
  auto top = run_cli("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* sub : {"forward", "generate", "inspect", "tokenize", "detokenize", "convert", "init", "emulator",
                          "finetune", "plugin", "eval", "bench", "analyze", "run", "rerun", "sweep", "schema",
                          "train-tokenizer", "brown-text"}) {
    EXPECT_NE(top.out.find(sub), std::string::npos) << sub;
    auto r = run_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_FALSE(r.out.empty()) << sub;
  }
  auto bad = run_cli("forward --model");
  EXPECT_EQ(bad.exit_code, 2) << "usage errors exit with 2";
  auto dev = run_cli("inspect " + fixture_dir("opt") + " --bogus");
  EXPECT_NE(dev.exit_code, 0);
}

TEST(CliForward, DeviceAndDtypeOptionsAreValidated) {
  ot::test::TempDir tmp;
  std::string ids = write_ids(tmp, R"({"input_ids": [[1, 2, 3]]})");
  auto r = run_cli("forward --model " + fixture_dir("opt") + " --input " + ids + " --output " + tmp.file("o.safetensors") + " --dtype fp8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--dtype: 'fp8' is not a dtype; expected fp32, bf16 or fp16"), std::string::npos) << r.err;
  r = run_cli("forward --model " + fixture_dir("opt") + " --input " + ids + " --output " + tmp.file("o.safetensors") + " --device tpu");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--device: 'tpu' is not a device"), std::string::npos) << r.err;
  r = run_cli("forward --model " + fixture_dir("opt") + " --input " + ids + " --output " + tmp.file("o.safetensors") + " --dtype bf16");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace

namespace {

// `ot bench offsite` on the OPT fixture's shape: every method measured in its own process, the
// GEMM rate of the same run printed beside the table and stored in the JSON.
TEST(CliBench, OffsiteMethodsWithTheGemmRateOfTheSameRun) {
  ot::test::TempDir tmp;
  auto r = run_cli("bench offsite --config " + fixture_dir("opt") + "/config.json --adapter 1,1 --emulator-layers 1"
                   " --methods ft,ot --steps 1 --warmup 0 --seq-len 16 --threads 1 --json " + tmp.file("bench.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| ft | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GEMM 2048^2 fp32 on cpu: "), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(ot::read_text_file(tmp.file("bench.json")));
  EXPECT_GT(j["gemm"]["gflops_before"].get<double>(), 0.0);
  EXPECT_GT(j["gemm"]["gflops_after"].get<double>(), 0.0);
  EXPECT_EQ(j["gemm"]["threads"], 1);
  ASSERT_EQ(j["methods"].size(), 2u);
  for (const auto& m : j["methods"]) EXPECT_GT(m["tokens_per_s"].get<double>(), 0.0) << m.dump();
  r = run_cli("bench offsite --config " + fixture_dir("opt") + "/config.json --steps 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--steps: expected a number >= 1, got 0"), std::string::npos) << r.err;
}

}  // namespace
