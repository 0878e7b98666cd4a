// tests/unit/test_offsite_e2e.cpp: the whole workflow as the two parties run it, through
// the CLI, on a real pretrained model (stories260K, trained on TinyStories) adapting to
// real text of another domain (Tiny Shakespeare); the emulator is distilled on TinyStories:
//   owner:  ot emulator (1-1-1 of 5 blocks, distilled)      -> bundle
//   data:   ot finetune on the bundle                       -> adapter
//   owner:  ot plugin                                        -> adapted full model
//   both:   ot finetune --trainable all (the FT baseline), ot eval of the five settings
// Every step records to HDF5; the test checks the records and the paper's basic pattern.
#include <torch/cuda.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/safetensors.h"
#include "offsite/adapter.h"
#include "results/run_file.h"
#include "test_support.h"
#include "util/content_hash.h"
#include "util/fs.h"

namespace {

using ot::test::run_cli;
using ot::test::shared_path;

class OffsiteWorkflow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ot::test::TempDir();
    const std::string m = shared_path("data/models/stories260K/");
    auto r = run_cli("convert llama2c --checkpoint " + m + "stories260K.bin --tokenizer " + m + "tok512.bin --out " + p("full"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string text = ot::read_text_file(shared_path("data/corpora/tinyshakespeare/input.txt"));
    std::ofstream(p("train.txt")) << text.substr(0, 60000);
    std::ofstream(p("val.txt")) << text.substr(60000, 12000);
    // The owner distils on general text of the pretraining domain (the paper: the Pile),
    // never on the data owner's task text.
    std::string stories = ot::read_text_file(shared_path("data/corpora/tinystories/tinystories_train_head.txt"));
    std::ofstream(p("distill.txt")) << stories.substr(0, 60000);
    std::ofstream(p("distill_val.txt")) << stories.substr(60000, 12000);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string p(const std::string& name) { return dir_->file(name); }
  static double eval_ppl(const std::string& setting, const std::string& model, const std::string& extra = "") {
    auto r = run_cli("eval --model " + model + " --tokenizer " + p("full") + " --corpus " + p("val.txt") +
                     " --block-size 64 --batch-size 8 --setting " + setting + " --record " + p(setting + ".h5") + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto run = ot::results::RunReader::open(p(setting + ".h5"));
    EXPECT_EQ(run.status(), ot::results::RunStatus::Completed);
    for (const auto& row : run.eval())
      if (row.metric == "perplexity") {
        EXPECT_EQ(row.setting, setting);
        return row.value;
      }
    ADD_FAILURE() << "no perplexity recorded for " << setting;
    return 0.0;
  }
  static ot::test::TempDir* dir_;
};
ot::test::TempDir* OffsiteWorkflow::dir_ = nullptr;

// `ot emulator --report`: the gradient alignment before and after distillation, printed per
// adapter block and recorded (eval rows grad_cosine, per-block values as an attribute).
TEST_F(OffsiteWorkflow, EmulatorReportsGradientAlignment) {
  auto r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --distill " + p("distill.txt") +
                   " --eval-corpus " + p("distill_val.txt") + " --eval-blocks 8 --max-steps 4 --block-size 64"
                   " --batch-size 4 --threads 1 --report --report-batches 2 --record " + p("report.h5") +
                   " --cache-dir " + p("cache") + " --out " + p("report_bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("gradient alignment"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("zero-shot  distilled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  mean "), std::string::npos) << r.out;
  auto run = ot::results::RunReader::open(p("report.h5"));
  int rows = 0;
  for (const auto& row : run.eval())
    if (row.metric == "grad_cosine") {
      ++rows;
      EXPECT_TRUE(row.setting == "zs_emulator" || row.setting == "distilled_emulator") << row.setting;
      EXPECT_GE(row.value, -1.0);
      EXPECT_LE(row.value, 1.0);
      EXPECT_EQ(row.n, 2);
    }
  EXPECT_EQ(rows, 2);
  const auto blocks = nlohmann::json::parse(run.string_attribute("gradient_alignment_distilled_emulator"));
  EXPECT_EQ(blocks["adapter_blocks"], nlohmann::json({0, 4}));
  EXPECT_EQ(blocks["block_cosine"].size(), 2u);
  // Without batches to measure on, --report says what it needs.
  r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --report --out " + p("x"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--report: gradient alignment needs batches"), std::string::npos) << r.err;
}

// `ot emulator --strategy cka --record`: the CKA matrix of the middle blocks is recorded
// (attribute cka_similarity) with the blocks it covers and the blocks kept.
TEST_F(OffsiteWorkflow, CkaSelectionRecordsItsMatrix) {
  auto r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --strategy cka --calibration " +
                   p("distill.txt") + " --block-size 64 --threads 1 --record " + p("cka.h5") + " --cache-dir " +
                   p("cache") + " --out " + p("cka_bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto run = ot::results::RunReader::open(p("cka.h5"));
  const auto cka = nlohmann::json::parse(run.string_attribute("cka_similarity"));
  const std::size_t m = cka["blocks"].size();
  ASSERT_GE(m, 2u);
  EXPECT_EQ(cka["blocks"][0], 1);  // the first middle block, after the one-block bottom adapter
  ASSERT_EQ(cka["matrix"].size(), m);
  for (std::size_t i = 0; i < m; ++i) {
    ASSERT_EQ(cka["matrix"][i].size(), m);
    EXPECT_DOUBLE_EQ(cka["matrix"][i][i].get<double>(), 1.0);
    for (std::size_t j = 0; j < m; ++j) EXPECT_DOUBLE_EQ(cka["matrix"][i][j].get<double>(), cka["matrix"][j][i].get<double>());
  }
  ASSERT_EQ(cka["kept"].size(), 1u);
  EXPECT_GE(cka["kept"][0].get<int>(), 1);
  EXPECT_LE(cka["kept"][0].get<int>(), static_cast<int>(m));
}

TEST_F(OffsiteWorkflow, FiveSettingsRecordedAndPluginBeatsZeroShot) {
  const std::string common = " --block-size 64 --batch-size 8 --threads 1 --cache-dir " + p("cache");
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --distill " + p("distill.txt") +
                     " --eval-corpus " + p("distill_val.txt") + " --eval-blocks 16 --max-steps 30 --lr 2e-3 --warmup-steps 0"
                     " --eval-every 10 --record " + p("emulator.h5") + " --hash-files --out " + p("bundle") + common);
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  auto inspect = run_cli("inspect " + p("bundle") + " --json");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  auto info = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(info["layers"], 3);
  EXPECT_EQ(info["offsite"]["block_origin"], nlohmann::json({0, 2, 4}));

  auto ft = run_cli("finetune --model " + p("bundle") + " --corpus " + p("train.txt") + " --eval-corpus " + p("val.txt") +
                    " --max-steps 40 --lr 3e-3 --schedule constant --eval-every 20 --record " + p("finetune.h5") +
                    " --hash-files --out " + p("adapter") + common);
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  EXPECT_TRUE(std::filesystem::exists(p("adapter/adapter.safetensors")));
  auto plug = run_cli("plugin --model " + p("full") + " --bundle " + p("bundle") + " --adapter " + p("adapter") +
                      " --out " + p("plugged") + " --record " + p("plugin.h5") + " --hash-files");
  ASSERT_EQ(plug.exit_code, 0) << plug.err;
  {
    // Both sides record the digests of the exchanged files; they agree with each other.
    auto owner = ot::results::RunReader::open(p("plugin.h5"));
    EXPECT_EQ(owner.status(), ot::results::RunStatus::Completed);
    auto data_owner = ot::results::RunReader::open(p("finetune.h5"));
    EXPECT_EQ(owner.string_attribute("bundle_sha256"), ot::directory_sha256(p("bundle")));
    EXPECT_EQ(owner.string_attribute("adapter_sha256"), ot::directory_sha256(p("adapter")));
    EXPECT_EQ(data_owner.string_attribute("bundle_sha256"), owner.string_attribute("bundle_sha256"));
    EXPECT_EQ(data_owner.string_attribute("adapter_sha256"), owner.string_attribute("adapter_sha256"));
    EXPECT_EQ(ot::results::RunReader::open(p("emulator.h5")).string_attribute("bundle_sha256"), owner.string_attribute("bundle_sha256"));
  }
  auto full_ft = run_cli("finetune --model " + p("full") + " --trainable all --corpus " + p("train.txt") + " --eval-corpus " +
                         p("val.txt") + " --max-steps 40 --lr 3e-3 --schedule constant --eval-every 20 --out " + p("ftfull") + common);
  ASSERT_EQ(full_ft.exit_code, 0) << full_ft.err;

  const double zs_full = eval_ppl("zs_full", p("full"));
  const double zs_emulator = eval_ppl("zs_emulator", p("bundle"));
  const double ft_emulator = eval_ppl("ft_emulator", p("bundle"), "--adapter " + p("adapter"));
  const double plugin = eval_ppl("plugin", p("plugged"));
  const double ft_full = eval_ppl("ft_full", p("ftfull"));
  std::cerr << "perplexity: zs_full " << zs_full << ", zs_emulator " << zs_emulator << ", ft_emulator " << ft_emulator
            << ", plugin " << plugin << ", ft_full " << ft_full << "\n";
  // On the owner's distillation text: dropping 2 of 5 blocks hurts, distillation recovers.
  auto distill = ot::results::RunReader::open(p("emulator.h5"));
  std::map<std::string, double> owner;
  for (const auto& row : distill.eval()) owner[row.setting] = row.value;
  ASSERT_TRUE(owner.count("zs_full") && owner.count("zs_emulator") && owner.count("distilled_emulator"));
  EXPECT_GT(owner["zs_emulator"], owner["zs_full"]) << "a 3-of-5-block emulator is weaker than the full model";
  EXPECT_LT(owner["distilled_emulator"], owner["zs_emulator"]) << "distillation recovers part of the gap";
  // On the data owner's text:
  EXPECT_LT(ft_emulator, zs_emulator) << "fine-tuning the adapter helps on the emulator";
  EXPECT_LT(plugin, zs_full) << "the adapter transfers to the full model";
  EXPECT_LT(ft_full, zs_full) << "full fine-tuning helps";
  // The plug-in equals evaluating the full model with --adapter.
  EXPECT_NEAR(eval_ppl("plugin", p("full"), "--adapter " + p("adapter") + " --bundle " + p("bundle")), plugin, 1e-6 * plugin);

  EXPECT_EQ(distill.status(), ot::results::RunStatus::Completed);
  ASSERT_TRUE(distill.curves().count("distill"));
  EXPECT_EQ(distill.curve("distill").values.at("step").size(), 30u);
  auto fine = ot::results::RunReader::open(p("finetune.h5"));
  EXPECT_EQ(fine.status(), ot::results::RunStatus::Completed);
  EXPECT_EQ(fine.curve("finetune").values.at("loss").size(), 40u);
  EXPECT_GT(fine.efficiency().size(), 0u);
}

// The distilled emulator's recorded score (taken from the last evaluation during
// distillation where that scored the weights kept) is the score of the bundle written: the
// bundle, loaded as a model of its own, scores the same on the same held-out blocks.
TEST_F(OffsiteWorkflow, DistilledEmulatorScoreIsTheWrittenBundles) {
  const std::string common = " --eval-corpus " + p("distill_val.txt") + " --eval-blocks 8 --block-size 64"
                             " --batch-size 4 --threads 1 --cache-dir " + p("cache");
  auto r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --distill " + p("distill.txt") +
                   " --max-steps 6 --eval-every 3 --lr 2e-3 --warmup-steps 0 --record " + p("scored.h5") + " --out " +
                   p("scored_bundle") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("emulator --model " + p("scored_bundle") + " --adapter 1,1 --emulator-layers 1 --record " +
              p("rescored.h5") + " --out " + p("rescored_bundle") + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto score = [](const std::string& file, const std::string& setting) {
    auto run = ot::results::RunReader::open(file);
    for (const auto& row : run.eval())
      if (row.setting == setting) return row.value;
    ADD_FAILURE() << file << ": no " << setting << " row";
    return 0.0;
  };
  const double recorded = score(p("scored.h5"), "distilled_emulator");
  EXPECT_NEAR(score(p("rescored.h5"), "zs_full"), recorded, 1e-9 * recorded);
  EXPECT_LT(recorded, score(p("scored.h5"), "zs_emulator")) << "six distillation steps lower the emulator's perplexity";
}

// Mixed precision and activation checkpointing through the CLI on the CPU: bf16 autocast
// distillation and adapter fine-tuning run, lower their losses, and record what the device
// measured (device time, model FLOPs per token); what cannot run fails before any work.
TEST_F(OffsiteWorkflow, Bf16AndActivationCheckpointingFromTheCli) {
  const std::string common = " --block-size 64 --batch-size 8 --threads 1 --precision bf16 --checkpoint-activations"
                             " --cache-dir " + p("cache");
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --distill " + p("distill.txt") +
                     " --max-steps 12 --lr 2e-3 --warmup-steps 0 --record " + p("emulator_bf16.h5") + " --out " +
                     p("bundle_bf16") + common);
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  auto ft = run_cli("finetune --model " + p("bundle_bf16") + " --corpus " + p("train.txt") + " --max-steps 12 --lr 3e-3"
                    " --schedule constant --record " + p("finetune_bf16.h5") + " --out " + p("adapter_bf16") + common);
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  for (const char* file : {"emulator_bf16.h5", "finetune_bf16.h5"}) {
    auto run = ot::results::RunReader::open(p(file));
    EXPECT_EQ(run.status(), ot::results::RunStatus::Completed) << file;
    const std::string curve = std::string(file).rfind("emulator", 0) == 0 ? "distill" : "finetune";
    const std::string pre = curve == "distill" ? "distill_" : "";
    const auto& loss = run.curve(curve).values.at("loss");
    ASSERT_EQ(loss.size(), 12u) << file;
    EXPECT_LT(loss.back(), loss.front()) << file;
    EXPECT_GT(run.efficiency_value(pre + "device_train_s"), 0.0) << file;
    EXPECT_GT(run.efficiency_value(pre + "flops_per_token"), 0.0) << file;
  }
  auto ev = run_cli("eval --model " + p("bundle_bf16") + " --adapter " + p("adapter_bf16") + " --corpus " + p("val.txt") +
                    " --block-size 64 --batch-size 8 --precision bf16");
  EXPECT_EQ(ev.exit_code, 0) << ev.err;

  auto r = run_cli("finetune --model " + p("bundle_bf16") + " --corpus " + p("train.txt") + " --precision fp16 --out " + p("y"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--precision: fp16 mixed precision needs a CUDA device"), std::string::npos) << r.err;
  r = run_cli("finetune --model " + p("bundle_bf16") + " --corpus " + p("train.txt") + " --precision bf16 --dtype bf16 --out " + p("y"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keeps fp32 master weights"), std::string::npos) << r.err;
  if (!torch::cuda::is_available()) {
    r = run_cli("emulator --model " + p("full") + " --emulator-layers 1 --adapter 1,1 --device cuda --out " + p("y"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--device: 'cuda' requested but this build of LibTorch has no usable CUDA device"), std::string::npos)
        << r.err;
  }
  r = run_cli("finetune --model " + p("bundle_bf16") + " --corpus " + p("train.txt") + " --precision fp12 --out " + p("y"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--precision: 'fp12' is not a precision; expected fp32, bf16 or fp16"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(p("y"))) << "nothing written by a refused command";
}

TEST_F(OffsiteWorkflow, BadInputsFailClearly) {
  auto r = run_cli("emulator --model " + p("full") + " --adapter 3,3 --emulator-layers 1 --out " + p("x"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("leaves no middle"), std::string::npos) << r.err;
  r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 4 --out " + p("x"));
  EXPECT_NE(r.err.find("only 3 middle blocks"), std::string::npos) << r.err;
  r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 2 --strategy zigzag --out " + p("x"));
  EXPECT_NE(r.err.find("'zigzag' is not a strategy"), std::string::npos) << r.err;
  r = run_cli("finetune --model " + p("full") + " --corpus " + p("train.txt") + " --out " + p("x"));
  EXPECT_NE(r.err.find("needs an offsite bundle"), std::string::npos) << r.err;
  r = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers -2 --out " + p("x"));
  EXPECT_EQ(r.exit_code, 2) << "a usage error";
  EXPECT_NE(r.err.find("--emulator-layers"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(p("x")));
}

// The issue's attack through the CLI: the data owner adds a middle block's weights and the
// token table to the adapter it returns. Plug-in refuses, names the tensor, writes nothing.
TEST_F(OffsiteWorkflow, PluginRefusesTensorsTheBundleDidNotIssue) {
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --out " + p("atk-bundle"));
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  auto ft = run_cli("finetune --model " + p("atk-bundle") + " --corpus " + p("train.txt") +
                    " --max-steps 2 --block-size 64 --threads 1 --out " + p("atk-adapter"));
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  auto a = ot::load_adapter(p("atk-adapter"));
  auto full = ot::SafetensorsFile::open(p("full/model.safetensors")).all();
  for (const char* name : {"model.layers.2.mlp.up_proj.weight", "model.embed_tokens.weight"}) {
    ASSERT_TRUE(full.count(name)) << name;
    a.tensors[name] = full.at(name).clone().mul_(2.0);
  }
  ot::save_adapter(a, p("atk-poisoned"));
  auto r = run_cli("plugin --model " + p("full") + " --bundle " + p("atk-bundle") + " --adapter " + p("atk-poisoned") +
                   " --out " + p("atk-out"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("atk-poisoned/adapter.safetensors: tensor 'model.embed_tokens.weight' is not part of what the bundle"),
            std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(p("atk-out")));
  r = run_cli("plugin --model " + p("full") + " --adapter " + p("atk-adapter") + " --out " + p("atk-out"));
  EXPECT_EQ(r.exit_code, 2) << "--bundle is required";
  EXPECT_NE(r.err.find("--bundle"), std::string::npos) << r.err;
  r = run_cli("eval --model " + p("full") + " --adapter " + p("atk-adapter") + " --corpus " + p("val.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give --bundle"), std::string::npos) << r.err;
  r = run_cli("plugin --model " + p("full") + " --bundle " + p("atk-bundle") + " --adapter " + p("atk-adapter") +
              " --out " + p("atk-out"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace

namespace {

TEST_F(OffsiteWorkflow, LoraFineTuneAlsoWritesPeftLayoutThatPlugsInToTheSameModel) {
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --out " + p("lora-bundle"));
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  auto ft = run_cli("finetune --model " + p("lora-bundle") + " --corpus " + p("train.txt") +
                    " --peft lora --lora-rank 2 --lora-alpha 4 --lora-dropout 0 --max-steps 2 --lr 1e-2 --block-size 64"
                    " --threads 1 --out " + p("lora-adapter"));
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  EXPECT_NE(ft.out.find("PEFT LoRA layout in " + p("lora-adapter/peft")), std::string::npos) << ft.out;
  EXPECT_TRUE(ot::file_exists(p("lora-adapter/offsite_adapter.json")));
  EXPECT_FALSE(ot::file_exists(p("lora-adapter/adapter_config.json")));
  auto cfg = nlohmann::json::parse(ot::read_text_file(p("lora-adapter/peft/adapter_config.json")));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 2);
  EXPECT_EQ(cfg["lora_alpha"], 4);
  EXPECT_EQ(cfg["layers_to_transform"], nlohmann::json({0, 4}));
  auto st = ot::SafetensorsFile::open(p("lora-adapter/peft/adapter_model.safetensors")).all();
  EXPECT_EQ(st.at("base_model.model.model.layers.4.mlp.down_proj.lora_B.weight").size(1), 2);
  // The owner plugs in either form and gets the same model, bit for bit.
  auto r = run_cli("plugin --model " + p("full") + " --bundle " + p("lora-bundle") + " --adapter " + p("lora-adapter") +
                   " --out " + p("lora-via-offsite"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("plugin --model " + p("full") + " --bundle " + p("lora-bundle") + " --peft " + p("lora-adapter/peft") +
              " --out " + p("lora-via-peft"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = ot::SafetensorsFile::open(p("lora-via-offsite/model.safetensors")).all();
  auto b = ot::SafetensorsFile::open(p("lora-via-peft/model.safetensors")).all();
  auto orig = ot::SafetensorsFile::open(p("full/model.safetensors")).all();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& kv : a) EXPECT_TRUE(torch::equal(kv.second, b.at(kv.first))) << kv.first;
  EXPECT_FALSE(torch::equal(a.at("model.layers.4.mlp.down_proj.weight"), orig.at("model.layers.4.mlp.down_proj.weight")));
  r = run_cli("plugin --model " + p("full") + " --bundle " + p("lora-bundle") + " --out " + p("lora-none"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("give exactly one of --adapter or --peft"), std::string::npos) << r.err;
  // A head trained besides LoRA has no place in PEFT's layout: no export, and the reason.
  auto emu_head = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 1 --train-head --out " +
                          p("lora-head-bundle"));
  ASSERT_EQ(emu_head.exit_code, 0) << emu_head.err;
  ft = run_cli("finetune --model " + p("lora-head-bundle") + " --corpus " + p("train.txt") +
               " --peft lora --train-head --max-steps 1 --block-size 64 --threads 1 --out " + p("lora-head-adapter"));
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  EXPECT_FALSE(std::filesystem::exists(p("lora-head-adapter/peft")));
  EXPECT_NE(ft.err.find("no PEFT LoRA export: the head was trained too"), std::string::npos) << ft.err;
}

TEST_F(OffsiteWorkflow, AdapterFineTuningOnARealTaskLowersItsLoss) {
  // A bundle without distillation (layer drop only) fine-tuned on ARC-Easy train.
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 2,1 --emulator-layers 1 --out " + p("arc-bundle"));
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  auto ft = run_cli("finetune --model " + p("arc-bundle") + " --task arc_easy --train-file " +
                    shared_path("data/tasks/arc_easy/ARC-Easy-Train.jsonl") + " --validation-file " +
                    shared_path("data/tasks/arc_easy/ARC-Easy-Dev.jsonl") +
                    " --max-eval-examples 64 --max-steps 24 --batch-size 8 --lr 3e-3 --schedule constant"
                    " --eval-every 8 --threads 1 --record " + p("arc.h5") + " --out " + p("arc-adapter"));
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  auto run = ot::results::RunReader::open(p("arc.h5"));
  const auto& evals = run.curve("finetune_eval").values.at("loss");
  ASSERT_EQ(evals.size(), 3u);
  EXPECT_LT(evals.back(), evals.front()) << "validation loss on ARC-Easy dev falls";
  auto cfg = nlohmann::json::parse(ot::read_text_file(p("arc-adapter/offsite_adapter.json")));
  EXPECT_EQ(cfg["blocks"], nlohmann::json({0, 1, 4}));
  EXPECT_EQ(cfg["task"], "arc_easy");
}

TEST_F(OffsiteWorkflow, MalformedTaskRecordsFailUnlessSkipping) {
  std::string good = ot::read_text_file(shared_path("data/tasks/arc_easy/ARC-Easy-Dev.jsonl"));
  std::string first_lines = good.substr(0, good.find('\n', good.find('\n') + 1) + 1);
  std::ofstream(p("bad.jsonl")) << first_lines << "{\"id\": \"broken\"}\n" << first_lines;
  auto emu = run_cli("emulator --model " + p("full") + " --adapter 1,1 --emulator-layers 2 --out " + p("bad-bundle"));
  ASSERT_EQ(emu.exit_code, 0) << emu.err;
  const std::string base = "finetune --model " + p("bad-bundle") + " --task arc_easy --train-file " + p("bad.jsonl") +
                           " --max-steps 1 --batch-size 2 --threads 1 --out " + p("bad-adapter");
  auto r = run_cli(base);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:3"), std::string::npos) << r.err;
  r = run_cli(base + " --skip-malformed");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 1 malformed record(s) of 5"), std::string::npos) << r.err;
}

}  // namespace
