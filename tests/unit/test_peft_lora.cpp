// tests/unit/test_peft_lora.cpp: LoRA adapters in PEFT's layout (offsite/peft_lora.h) and
// the offsite adapter's own metadata name. The export carries PEFT's names, shapes and
// config keys; merged back onto the original model (W += alpha/r B A, transposed for GPT-2's
// Conv1D, as PEFT's get_delta_weight) it gives exactly the model the merged offsite adapter
// gives; a PEFT adapter that touches anything the bundle did not issue, or that is malformed,
// is refused by file and key or tensor.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "checkpoint/safetensors.h"
#include "model/load.h"
#include "model/peft.h"
#include "offsite/adapter.h"
#include "offsite/emulator.h"
#include "offsite/peft_lora.h"
#include "test_support.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using ot::test::fixture_dir;

// A bundle of the 4-block fixture (adapter blocks 0 and 3, block 1 the emulator), its
// adapter blocks fine-tuned with LoRA (random factors standing in for training).
class PeftLoraExport : public ::testing::Test {
 protected:
  void make(const std::string& arch, const std::vector<std::string>& targets = {}) {
    arch_ = arch;
    full_ = ot::load_model(fixture_dir(arch));
    ot::EmulatorOptions o;
    o.bottom = 1;
    o.top = 1;
    o.layers = 1;
    auto layout = ot::make_layout(4, o, {0});
    ot::DecoderLM bundle = ot::build_bundle(full_, layout, o);
    ot::save_model(bundle, tmp_.file("bundle"));
    bundle_ = ot::load_model(tmp_.file("bundle"));
    for (int64_t j = 0; j < bundle_->num_blocks(); ++j)
      if (layout.is_adapter(bundle_->block_origin()[static_cast<size_t>(j)])) positions_.push_back(j);
    lora_.method = "lora";
    lora_.lora_rank = 3;
    lora_.lora_alpha = 8;
    lora_.lora_dropout = 0.0;
    lora_.lora_targets = targets;
    ot::apply_peft(*bundle_, positions_, lora_);
    torch::manual_seed(7);
    torch::NoGradGuard ng;
    for (auto& item : bundle_->named_parameters(true))
      if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0.0, 0.05);
    peft_ = ot::extract_peft_lora(*bundle_, positions_, lora_, "original-model");
    std::filesystem::create_directories(tmp_.file("peft"));
    ot::save_peft_lora(peft_, tmp_.file("peft"));
    ot::merge_peft(*bundle_);
    offsite_ = ot::extract_adapter(*bundle_, {0, 3}, false, ot::model_fingerprint(*full_), 4);
  }
  ot::DecoderLM fresh_full() { return ot::load_model(fixture_dir(arch_)); }
  // The error `fn` raises (fails the test when it raises none).
  static std::string error_of(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const ot::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  // The refusal of plugging in a copy of the export altered by `alter_cfg` / `alter_st`.
  std::string refusal(const std::function<void(nlohmann::json&)>& alter_cfg,
                      const std::function<void(ot::StateDict&)>& alter_st) {
    ot::PeftLora p = peft_;
    for (auto& kv : p.tensors) kv.second = kv.second.clone();
    if (alter_cfg) alter_cfg(p.config);
    if (alter_st) alter_st(p.tensors);
    const std::string dir = tmp_.file("altered" + std::to_string(++altered_));
    std::filesystem::create_directories(dir);
    ot::save_peft_lora(p, dir);
    ot::DecoderLM target = fresh_full();
    return error_of([&] { ot::plug_in_peft_lora(*target, dir, ot::read_issued_adapter(tmp_.file("bundle"), *target)); });
  }
  static void expect_same_weights(ot::BlockModelImpl& a, ot::BlockModelImpl& b) {
    auto sa = a.hf_state_dict(), sb = b.hf_state_dict();
    ASSERT_EQ(sa.size(), sb.size());
    for (const auto& kv : sa) EXPECT_TRUE(torch::equal(kv.second, sb.at(kv.first))) << kv.first;
  }
  std::string arch_;
  ot::test::TempDir tmp_;
  ot::DecoderLM full_{nullptr}, bundle_{nullptr};
  std::vector<int64_t> positions_;
  ot::PeftOptions lora_;
  ot::PeftLora peft_;
  ot::Adapter offsite_;
  int altered_ = 0;
};

TEST_F(PeftLoraExport, NamesShapesAndConfigAreThoseOfPeft) {
  make("opt");
  const nlohmann::json& c = peft_.config;
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["task_type"], "CAUSAL_LM");
  EXPECT_EQ(c["r"], 3);
  EXPECT_TRUE(c["lora_alpha"].is_number_integer());
  EXPECT_EQ(c["lora_alpha"], 8);
  EXPECT_EQ(c["lora_dropout"], 0.0);
  EXPECT_EQ(c["target_modules"], nlohmann::json({"fc1", "fc2", "k_proj", "out_proj", "q_proj", "v_proj"}));
  EXPECT_EQ(c["layers_to_transform"], nlohmann::json({0, 3}));
  EXPECT_EQ(c["bias"], "none");
  EXPECT_EQ(c["fan_in_fan_out"], false);
  EXPECT_EQ(c["inference_mode"], true);
  EXPECT_TRUE(c["modules_to_save"].is_null());
  EXPECT_EQ(c["use_rslora"], false);
  EXPECT_EQ(c["base_model_name_or_path"], "original-model");
  // 6 projections x 2 blocks x (A, B), under original block indices; the emulator block 1
  // and the dropped block 2 have none.
  EXPECT_EQ(peft_.tensors.size(), 24u);
  const auto& a = peft_.tensors.at("base_model.model.model.decoder.layers.3.self_attn.q_proj.lora_A.weight");
  const auto& b = peft_.tensors.at("base_model.model.model.decoder.layers.3.self_attn.q_proj.lora_B.weight");
  EXPECT_EQ(a.sizes(), at::IntArrayRef({3, 64}));
  EXPECT_EQ(b.sizes(), at::IntArrayRef({64, 3}));
  EXPECT_EQ(peft_.tensors.at("base_model.model.model.decoder.layers.0.fc1.lora_A.weight").sizes(), at::IntArrayRef({3, 64}));
  EXPECT_EQ(peft_.tensors.at("base_model.model.model.decoder.layers.0.fc1.lora_B.weight").sizes(), at::IntArrayRef({256, 3}));
  for (const auto& kv : peft_.tensors) EXPECT_EQ(kv.first.find("layers.1."), std::string::npos) << kv.first;
  // What is on disk is what was extracted.
  auto disk = ot::SafetensorsFile::open(tmp_.file("peft/adapter_model.safetensors")).all();
  EXPECT_EQ(disk.size(), peft_.tensors.size());
  EXPECT_EQ(nlohmann::json::parse(ot::read_text_file(tmp_.file("peft/adapter_config.json"))), c);
}

TEST_F(PeftLoraExport, MergedOntoTheOriginalItGivesThePluggedInModelBitForBit) {
  make("opt");
  ot::DecoderLM via_offsite = fresh_full();
  ot::plug_in(*via_offsite, offsite_, "adapter", ot::read_issued_adapter(tmp_.file("bundle"), *via_offsite));
  ot::DecoderLM via_peft = fresh_full();
  auto a = ot::plug_in_peft_lora(*via_peft, tmp_.file("peft"), ot::read_issued_adapter(tmp_.file("bundle"), *via_peft));
  EXPECT_EQ(a.config["blocks"], nlohmann::json({0, 3}));
  expect_same_weights(*via_offsite, *via_peft);
  // Without a bundle (merge_peft_lora): the same again, and PEFT's formula by hand.
  ot::DecoderLM merged = fresh_full();
  ot::merge_peft_lora(*merged, tmp_.file("peft"));
  expect_same_weights(*via_offsite, *merged);
  const std::string m = "model.decoder.layers.3.self_attn.v_proj";
  auto delta = merged->hf_state_dict().at(m + ".weight") - full_->hf_state_dict().at(m + ".weight");
  auto want = torch::mm(peft_.tensors.at("base_model.model." + m + ".lora_B.weight"),
                        peft_.tensors.at("base_model.model." + m + ".lora_A.weight")) * (8.0 / 3.0);
  EXPECT_GT(want.abs().max().item<double>(), 1e-4);
  EXPECT_LT((delta - want).abs().max().item<double>(), 1e-6);
}

TEST_F(PeftLoraExport, Gpt2Conv1DIsFanInFanOut) {
  make("gpt2");
  EXPECT_EQ(peft_.config["fan_in_fan_out"], true);
  EXPECT_EQ(peft_.config["target_modules"], nlohmann::json({"c_attn", "c_fc", "c_proj"}));
  const std::string m = "transformer.h.0.attn.c_attn";
  const auto& a = peft_.tensors.at("base_model.model." + m + ".lora_A.weight");
  const auto& b = peft_.tensors.at("base_model.model." + m + ".lora_B.weight");
  // PEFT takes a Conv1D's (in, out) weight shape as in_features, out_features: A (r, in), B (out, r).
  EXPECT_EQ(a.sizes(), at::IntArrayRef({3, 64}));
  EXPECT_EQ(b.sizes(), at::IntArrayRef({192, 3}));
  ot::DecoderLM via_offsite = fresh_full();
  ot::plug_in(*via_offsite, offsite_, "adapter", ot::read_issued_adapter(tmp_.file("bundle"), *via_offsite));
  ot::DecoderLM via_peft = fresh_full();
  ot::plug_in_peft_lora(*via_peft, tmp_.file("peft"), ot::read_issued_adapter(tmp_.file("bundle"), *via_peft));
  expect_same_weights(*via_offsite, *via_peft);
  // The stored (in, out) weight changes by (scaling B A)^T.
  auto delta = via_peft->hf_state_dict().at(m + ".weight") - full_->hf_state_dict().at(m + ".weight");
  EXPECT_EQ(delta.sizes(), at::IntArrayRef({64, 192}));
  EXPECT_LT((delta - (torch::mm(b, a) * (8.0 / 3.0)).t()).abs().max().item<double>(), 1e-6);
}

TEST_F(PeftLoraExport, TargetModulesSelectExactlyTheLoraModules) {
  make("gpt2", {"attn.c_proj", "c_attn"});  // c_proj alone would select mlp.c_proj too
  EXPECT_EQ(peft_.config["target_modules"], nlohmann::json({"attn.c_proj", "c_attn"}));
  ot::DecoderLM via_peft = fresh_full();
  ot::merge_peft_lora(*via_peft, tmp_.file("peft"));
  ot::DecoderLM via_offsite = fresh_full();
  ot::plug_in(*via_offsite, offsite_, "adapter", ot::read_issued_adapter(tmp_.file("bundle"), *via_offsite));
  expect_same_weights(*via_offsite, *via_peft);
}

TEST_F(PeftLoraExport, MalformedOrUnissuedAdaptersAreRefusedByName) {
  make("opt");
  const std::string q3 = "base_model.model.model.decoder.layers.3.self_attn.q_proj";
  std::string e = refusal([](nlohmann::json& c) { c["peft_type"] = "IA3"; }, nullptr);
  EXPECT_NE(e.find("adapter_config.json: key 'peft_type': expected \"LORA\", got \"IA3\""), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c.erase("r"); }, nullptr);
  EXPECT_NE(e.find("adapter_config.json: missing key 'r'"), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c["modules_to_save"] = {"lm_head"}; }, nullptr);
  EXPECT_NE(e.find("key 'modules_to_save': expected null"), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c["use_dora"] = true; }, nullptr);
  EXPECT_NE(e.find("key 'use_dora': DoRA adapters are not plain LoRA"), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c["layer_replication"] = {{0, 2}, {1, 3}}; }, nullptr);
  EXPECT_NE(e.find("key 'layer_replication': expected null"), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c["target_modules"] = {"q_proj", "nonexistent"}; }, nullptr);
  EXPECT_NE(e.find("key 'target_modules': 'nonexistent' names no projection"), std::string::npos) << e;
  // Block 1 of the original model is not an adapter block (its place in the bundle is the
  // emulator's): a LoRA there is refused even when the config lists it.
  const std::string q1 = "base_model.model.model.decoder.layers.1.self_attn.q_proj";
  e = refusal([](nlohmann::json& c) { c["layers_to_transform"] = {0, 1, 3}; },
              [&](ot::StateDict& t) {
                t[q1 + ".lora_A.weight"] = t.at(q3 + ".lora_A.weight");
                t[q1 + ".lora_B.weight"] = t.at(q3 + ".lora_B.weight");
              });
  EXPECT_NE(e.find("adapter_model.safetensors: tensor '" + q1 + ".lora_A.weight' changes "
                   "'model.decoder.layers.1.self_attn.q_proj.weight', in block 1, which is not an adapter block"),
            std::string::npos) << e;
  e = refusal(nullptr, [&](ot::StateDict& t) {
    t[q1 + ".lora_A.weight"] = t.at(q3 + ".lora_A.weight");
    t[q1 + ".lora_B.weight"] = t.at(q3 + ".lora_B.weight");
  });
  EXPECT_NE(e.find("layer 1 is not in the layers_to_transform"), std::string::npos) << e;
  e = refusal(nullptr, [&](ot::StateDict& t) { t[q3 + ".lora_A.weight"] = torch::zeros({3, 65}); });
  EXPECT_NE(e.find("tensor '" + q3 + ".lora_A.weight' has shape [3, 65] but expected [3, 64]"), std::string::npos) << e;
  e = refusal([](nlohmann::json& c) { c["r"] = 4; }, nullptr);
  EXPECT_NE(e.find("has shape [3, 64] but expected [4, 64]"), std::string::npos) << e;
  e = refusal(nullptr, [&](ot::StateDict& t) { t.at(q3 + ".lora_B.weight")[0][0].fill_(std::nan("")); });
  EXPECT_NE(e.find("tensor '" + q3 + ".lora_B.weight' holds non-finite values"), std::string::npos) << e;
  e = refusal(nullptr, [&](ot::StateDict& t) { t.erase(q3 + ".lora_B.weight"); });
  EXPECT_NE(e.find("tensor '" + q3 + ".lora_B.weight' is missing"), std::string::npos) << e;
  e = refusal(nullptr, [&](ot::StateDict& t) { t["base_model.model.model.decoder.embed_tokens.weight"] = torch::zeros({4}); });
  EXPECT_NE(e.find("tensor 'base_model.model.model.decoder.embed_tokens.weight' is not a LoRA factor"),
            std::string::npos) << e;
}

TEST_F(PeftLoraExport, OffsiteMetadataHasItsOwnNameAndTheOldNameStillLoads) {
  make("opt");
  ot::save_adapter(offsite_, tmp_.file("adapter"));
  EXPECT_TRUE(ot::file_exists(tmp_.file("adapter/offsite_adapter.json")));
  EXPECT_FALSE(ot::file_exists(tmp_.file("adapter/adapter_config.json")));
  EXPECT_EQ(ot::load_adapter(tmp_.file("adapter")).config_file, "offsite_adapter.json");
  // An adapter written before the rename.
  std::filesystem::rename(tmp_.file("adapter/offsite_adapter.json"), tmp_.file("adapter/adapter_config.json"));
  ot::Adapter old = ot::load_adapter(tmp_.file("adapter"));
  EXPECT_EQ(old.config_file, "adapter_config.json");
  EXPECT_EQ(old.config, offsite_.config);
  ot::DecoderLM target = fresh_full();
  ot::plug_in(*target, old, tmp_.file("adapter"), ot::read_issued_adapter(tmp_.file("bundle"), *target));
  // Refusals name the file the claim came from.
  old.config["blocks"] = {0, 2};
  std::string e = error_of([&] { ot::check_adapter(old, ot::read_issued_adapter(tmp_.file("bundle"), *full_),
                                                   ot::AdapterTarget::kFullModel, "old"); });
  EXPECT_NE(e.find("old/adapter_config.json: block 2 is not an adapter block"), std::string::npos) << e;
  // A PEFT directory is not an offsite adapter; a directory with neither file says what is missing.
  e = error_of([&] { ot::load_adapter(tmp_.file("peft")); });
  EXPECT_NE(e.find("a PEFT adapter config, not an offsite adapter's offsite_adapter.json"), std::string::npos) << e;
  EXPECT_NE(e.find("ot plugin --peft"), std::string::npos) << e;
  std::filesystem::create_directories(tmp_.file("empty"));
  e = error_of([&] { ot::load_adapter(tmp_.file("empty")); });
  EXPECT_NE(e.find("empty/offsite_adapter.json: missing"), std::string::npos) << e;
}

}  // namespace
