// tests/unit/test_offsite.cpp: the model owner's operations. Layer selection against the
// paper's formula evaluated by Python itself (round-half-to-even), emulator bundles that
// compute exactly what the original computes with only the kept blocks, bundles that hold
// no dropped block, bit-exact plug-in, pruning/quantization definitions, LoRA merging.
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include "checkpoint/safetensors.h"
#include "model/load.h"
#include "offsite/adapter.h"
#include "offsite/cka.h"
#include "offsite/distill.h"
#include "train/trainer.h"
#include <ATen/Parallel.h>
#include "offsite/emulator.h"
#include "offsite/layer_selection.h"
#include "model/peft.h"
#include "test_support.h"
#include "token_blocks.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using ot::test::shared_path;

using ot::test::fixture_dir;

std::string run_python(const std::string& code) {
  std::string cmd = "/usr/bin/python3 -c '" + code + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << cmd;
  return out;
}

// Found by tests/fuzz/fuzz_adapter (seeds blocks_not_array, format_not_string.json):
// values of the wrong type in the adapter's metadata (offsite_adapter.json; then called
// adapter_config.json) escaped as nlohmann::json::type_error (at load or at plug-in) instead
// of a message naming the file and key.
TEST(AdapterConfig, WrongTypesAreRejectedWithTheKey) {
  ot::test::TempDir tmp;
  const std::string dir = tmp.file("adapter");
  std::filesystem::create_directories(dir);
  ot::test::write_file(dir + "/adapter.safetensors", "");
  const nlohmann::json good = {{"format", "offsite-adapter"}, {"format_version", 1}, {"model_type", "opt"},
                               {"num_original_layers", 6},    {"blocks", {0, 5}},   {"fingerprint", "0123abcd"}};
  auto expect_rejected = [&](const nlohmann::json& cfg, const std::vector<std::string>& parts) {
    ot::test::write_file(dir + "/offsite_adapter.json", cfg.dump());
    std::vector<std::string> all = parts;
    all.push_back(dir + "/offsite_adapter.json");
    ot::test::expect_error([&] { ot::load_adapter(dir); }, all);
  };
  nlohmann::json c = good;
  c["blocks"] = false;
  expect_rejected(c, {"key 'blocks': expected an array of block indices, got false"});
  c = good;
  c["blocks"] = {0, 6};
  expect_rejected(c, {"key 'blocks': expected block indices in [0, 6), got 6"});
  c = good;
  c["format"] = 1;
  expect_rejected(c, {"expected \"format\": \"offsite-adapter\""});
  c = good;
  c["model_type"] = 3;
  expect_rejected(c, {"key 'model_type': expected a string, got 3"});
  c = good;
  c["num_original_layers"] = "6";
  expect_rejected(c, {"key 'num_original_layers': expected a positive integer, got \"6\""});
  c = good;
  c["peft"] = "lora";
  expect_rejected(c, {"key 'peft': expected an object"});
}

TEST(LayerSelection, UniformMatchesThePapersFunctionUnderPythonRounding) {
  // The paper: stride = (m-1)/(k-1); idx_i = round(i*stride), Python 3 round (half to even).
  auto expected = nlohmann::json::parse(run_python(
      "import json; print(json.dumps({f\"{m},{k}\": [round(i*((m-1)/(k-1))) for i in range(k)] "
      "for m in range(2, 13) for k in range(2, m+1)}))"));
  int checked = 0;
  for (int64_t m = 2; m <= 12; ++m)
    for (int64_t k = 2; k <= m; ++k, ++checked)
      EXPECT_EQ(nlohmann::json(ot::uniform_layer_indices(m, k)), expected[std::to_string(m) + "," + std::to_string(k)])
          << "m=" << m << " k=" << k;
  EXPECT_EQ(checked, 66);
  EXPECT_EQ(ot::uniform_layer_indices(6, 3), (std::vector<int64_t>{0, 2, 5}));  // a tie: 2.5 -> 2
  // PAPER.md's table of kept blocks for OPT-1.3B 2-8-2 (absolute = 2 + relative).
  auto opt = ot::uniform_layer_indices(20, 8);
  for (auto& i : opt) i += 2;
  EXPECT_EQ(opt, (std::vector<int64_t>{2, 5, 7, 10, 13, 16, 18, 21}));
}

TEST(LayerSelection, RoundHalfEvenAndFloorAndLists) {
  EXPECT_EQ(ot::round_half_even(0.5), 0);
  EXPECT_EQ(ot::round_half_even(1.5), 2);
  EXPECT_EQ(ot::round_half_even(2.5), 2);
  EXPECT_EQ(ot::round_half_even(2.5000001), 3);
  EXPECT_EQ(ot::floor_layer_indices(6, 3), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(ot::floor_layer_indices(10, 4), (std::vector<int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(ot::parse_layer_list("0, 3,5", 6, "--strategy"), (std::vector<int64_t>{0, 3, 5}));
  EXPECT_THROW(ot::parse_layer_list("0,6", 6, "--strategy"), ot::Error);
  EXPECT_THROW(ot::parse_layer_list("3,1", 6, "--strategy"), ot::Error);
  EXPECT_THROW(ot::parse_layer_list("x", 6, "--strategy"), ot::Error);
}

TEST(LayerSelection, InconsistentSizesAreRejected) {
  auto msg = [](auto fn) {
    try { fn(); } catch (const ot::Error& e) { return std::string(e.what()); }
    return std::string("no error");
  };
  EXPECT_NE(msg([] { ot::check_offsite_split(4, 2, 2, 1); }).find("leaves no middle"), std::string::npos);
  EXPECT_NE(msg([] { ot::check_offsite_split(8, 2, 2, 5); }).find("only 4 middle blocks"), std::string::npos);
  EXPECT_NE(msg([] { ot::check_offsite_split(8, 2, 2, 0); }).find("at least 1 layer"), std::string::npos);
  EXPECT_NE(msg([] { ot::select_middle_blocks(4, 2, "random"); }).find("'random' is not a strategy"), std::string::npos);
}

class Emulator : public ::testing::TestWithParam<std::string> {};

TEST_P(Emulator, BundleComputesTheOriginalWithOnlyTheKeptBlocks) {
  ot::DecoderLM full = ot::load_model(fixture_dir(GetParam()));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  auto kept = ot::select_middle_blocks(2, 1, "uniform");  // 4 blocks: keep 1 of the middle 2
  auto layout = ot::make_layout(4, o, kept);
  // k = 1 keeps the central middle block: round_half_even(0.5) = 0 -> original block 1.
  EXPECT_EQ(layout.block_origin, (std::vector<int64_t>{0, 1, 3}));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  ASSERT_EQ(bundle->num_blocks(), 3);
  // Reference: the original model's own blocks 0, origin[1], 3 run in sequence.
  torch::NoGradGuard ng;
  auto ids = torch::randint(0, 1000, {2, 12}, torch::kLong);
  auto ctx = full->make_context(ids, {}, {}, 0);
  auto h = full->embed(ids, ctx);
  for (int64_t b : layout.block_origin) h = full->run_block(b, h, ctx);
  auto reference = full->head(h);
  EXPECT_TRUE(torch::equal(bundle->forward(ids).logits, reference));
}

TEST_P(Emulator, BundleOnDiskHoldsNoDroppedBlockAndPluginIsBitExact) {
  ot::DecoderLM full = ot::load_model(fixture_dir(GetParam()));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 1;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  ot::test::TempDir tmp;
  ot::save_model(bundle, tmp.file("bundle"));
  // On disk: an ordinary 3-block checkpoint; no tensor equals a dropped block's tensor.
  auto sd = ot::SafetensorsFile::open(tmp.file("bundle/model.safetensors")).all();
  auto full_sd = full->hf_state_dict();
  std::set<int64_t> dropped = {0, 1, 2, 3};
  for (int64_t b : layout.block_origin) dropped.erase(b);
  ASSERT_EQ(dropped.size(), 1u);
  const int64_t gone = *dropped.begin();
  for (const auto& kv : full_sd) {
    std::string tag = (GetParam() == "gpt2" || GetParam() == "bloom") ? ".h." + std::to_string(gone) + "."
                                                                        : ".layers." + std::to_string(gone) + ".";
    if (kv.first.find(tag) == std::string::npos || kv.second.dim() < 2) continue;
    for (const auto& b : sd) EXPECT_FALSE(b.second.sizes() == kv.second.sizes() && torch::equal(b.second, kv.second))
        << "bundle tensor " << b.first << " equals dropped " << kv.first;
  }
  ot::DecoderLM reloaded = ot::load_model(tmp.file("bundle"));
  EXPECT_EQ(reloaded->block_origin(), layout.block_origin);
  torch::NoGradGuard ng;
  auto ids = torch::randint(0, 1000, {1, 10}, torch::kLong);
  EXPECT_TRUE(torch::equal(reloaded->forward(ids).logits, bundle->forward(ids).logits));
  // An untouched adapter plugged back reproduces the original bit-exactly.
  auto fp = ot::model_fingerprint(*full);
  EXPECT_EQ(ot::model_fingerprint(*reloaded), fp);
  auto adapter = ot::extract_adapter(*reloaded, layout.adapter_blocks(), false, fp, 4);
  ot::save_adapter(adapter, tmp.file("adapter"));
  ot::DecoderLM target = ot::load_model(fixture_dir(GetParam()));
  auto before = target->forward(ids).logits;
  const ot::IssuedAdapter issued = ot::read_issued_adapter(tmp.file("bundle"), *target);
  EXPECT_EQ(issued.fingerprint, fp);
  ot::plug_in(*target, ot::load_adapter(tmp.file("adapter")), tmp.file("adapter"), issued);
  EXPECT_TRUE(torch::equal(target->forward(ids).logits, before));
}

INSTANTIATE_TEST_SUITE_P(Families, Emulator, ::testing::Values("opt", "gpt2", "bloom", "llama"),
                         [](const auto& info) { return info.param; });

// The model owner's side of the trust boundary: a bundle of the OPT fixture (blocks 0 and 3
// the adapter, block 1 the emulator, block 2 dropped) and adapters the data owner may have
// altered. Every alteration is refused with the tensor or key named; the honest adapter
// plugs in.
class PluginIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    full_ = ot::load_model(fixture_dir("opt"));
    ot::EmulatorOptions o;
    o.bottom = 1;
    o.top = 1;
    o.layers = 1;
    auto layout = ot::make_layout(4, o, {0});
    ot::DecoderLM bundle = ot::build_bundle(full_, layout, o);
    ot::save_model(bundle, tmp_.file("bundle"));
    bundle_ = ot::load_model(tmp_.file("bundle"));
    {
      torch::NoGradGuard ng;  // the data owner's "training"
      for (auto& p : bundle_->parameters()) p.add_(0.01);
    }
    honest_ = ot::extract_adapter(*bundle_, {0, 3}, false, ot::model_fingerprint(*full_), 4);
  }
  // The error plug-in raises for `a` (fails the test when it plugs in).
  std::string refusal(const ot::Adapter& a) {
    ot::DecoderLM target = ot::load_model(fixture_dir("opt"));
    try {
      ot::plug_in(*target, a, "returned-adapter", ot::read_issued_adapter(tmp_.file("bundle"), *target));
    } catch (const ot::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "plugged in";
    return "";
  }
  ot::test::TempDir tmp_;
  ot::DecoderLM full_{nullptr}, bundle_{nullptr};
  ot::Adapter honest_;
};

TEST_F(PluginIntegrity, TheHonestAdapterPlugsInExactly) {
  ot::DecoderLM target = ot::load_model(fixture_dir("opt"));
  ot::plug_in(*target, honest_, "returned-adapter", ot::read_issued_adapter(tmp_.file("bundle"), *target));
  auto sd = target->hf_state_dict();
  for (const auto& kv : honest_.tensors) EXPECT_TRUE(torch::equal(sd.at(kv.first), kv.second)) << kv.first;
  // Everything else is the owner's, untouched.
  auto orig = full_->hf_state_dict();
  EXPECT_TRUE(torch::equal(sd.at("model.decoder.layers.1.fc1.weight"), orig.at("model.decoder.layers.1.fc1.weight")));
  EXPECT_TRUE(torch::equal(sd.at("model.decoder.embed_tokens.weight"), orig.at("model.decoder.embed_tokens.weight")));
}

TEST_F(PluginIntegrity, TensorsOutsideTheIssuedBlocksAreRefusedByName) {
  ot::Adapter a = honest_;
  a.tensors["model.decoder.layers.2.fc1.weight"] = full_->hf_state_dict().at("model.decoder.layers.2.fc1.weight").clone();
  std::string e = refusal(a);
  EXPECT_NE(e.find("'model.decoder.layers.2.fc1.weight' is not part of what the bundle"), std::string::npos) << e;
  a = honest_;  // an emulator block the bundle holds
  a.tensors["model.decoder.layers.1.fc1.weight"] = bundle_->hf_state_dict().at("model.decoder.layers.1.fc1.weight").clone();
  e = refusal(a);
  EXPECT_NE(e.find("'model.decoder.layers.1.fc1.weight' belongs to block 1, which is not an adapter block"), std::string::npos) << e;
  a = honest_;
  a.tensors["model.decoder.embed_tokens.weight"] = full_->hf_state_dict().at("model.decoder.embed_tokens.weight").clone();
  e = refusal(a);
  EXPECT_NE(e.find("'model.decoder.embed_tokens.weight' is not part of what the bundle"), std::string::npos) << e;
  a = honest_;  // the head, which this bundle did not issue
  a.tensors["model.decoder.final_layer_norm.weight"] = full_->hf_state_dict().at("model.decoder.final_layer_norm.weight").clone();
  e = refusal(a);
  EXPECT_NE(e.find("is the model's head, which the bundle"), std::string::npos) << e;
}

TEST_F(PluginIntegrity, TheConfigsClaimsAreCheckedAgainstTheBundle) {
  ot::Adapter a = honest_;
  a.config["blocks"] = {0, 3, 99};
  std::string e = refusal(a);
  EXPECT_NE(e.find("offsite_adapter.json: block 99 is not an adapter block of the bundle"), std::string::npos) << e;
  a = honest_;
  a.config["blocks"] = {0};  // the tensors of block 3 are then unclaimed
  e = refusal(a);
  EXPECT_NE(e.find("belongs to block 3, which offsite_adapter.json does not list"), std::string::npos) << e;
  a = honest_;
  a.config["includes_head"] = true;
  e = refusal(a);
  EXPECT_NE(e.find("did not make the head trainable"), std::string::npos) << e;
  a = honest_;
  a.config["fingerprint"] = "0123456789abcdef";
  e = refusal(a);
  EXPECT_NE(e.find("is not the bundle's"), std::string::npos) << e;
  a = honest_;
  a.config["num_original_layers"] = 8;
  e = refusal(a);
  EXPECT_NE(e.find("8-block model"), std::string::npos) << e;
  a = honest_;
  a.config.erase("blocks");
  e = refusal(a);
  EXPECT_NE(e.find("offsite_adapter.json: malformed"), std::string::npos) << e;
}

TEST_F(PluginIntegrity, DtypeShapeValuesAndCompletenessAreChecked) {
  const std::string w = "model.decoder.layers.3.fc2.weight";
  ot::Adapter a = honest_;
  a.tensors[w] = a.tensors[w].to(torch::kBFloat16);
  std::string e = refusal(a);
  EXPECT_NE(e.find("'" + w + "' is BFloat16 but the bundle issued it as Float"), std::string::npos) << e;
  a = honest_;
  a.tensors[w] = a.tensors[w].narrow(0, 0, 2).clone();
  e = refusal(a);
  EXPECT_NE(e.find("'" + w + "' has shape [2, "), std::string::npos) << e;
  a = honest_;
  a.tensors[w] = a.tensors[w].clone();
  a.tensors[w][0][0] = std::numeric_limits<float>::quiet_NaN();
  e = refusal(a);
  EXPECT_NE(e.find("'" + w + "' holds non-finite values"), std::string::npos) << e;
  a = honest_;
  a.tensors[w] = a.tensors[w].clone();
  a.tensors[w][1][1] = std::numeric_limits<float>::infinity();
  e = refusal(a);
  EXPECT_NE(e.find("non-finite"), std::string::npos) << e;
  a = honest_;
  a.tensors.erase("model.decoder.layers.0.fc1.bias");
  e = refusal(a);
  EXPECT_NE(e.find("'model.decoder.layers.0.fc1.bias' is missing (block 0"), std::string::npos) << e;
}

TEST_F(PluginIntegrity, AnAdapterForAnotherModelIsRefused) {
  ot::DecoderLM other = ot::load_model(fixture_dir("opt"));
  {
    torch::NoGradGuard ng;
    other->hf_state_dict()["model.decoder.embed_tokens.weight"].add_(1e-3);  // a different model
  }
  ot::DecoderLM target = ot::load_model(fixture_dir("opt"));
  const ot::IssuedAdapter issued = ot::read_issued_adapter(tmp_.file("bundle"), *target);
  try {
    ot::plug_in(*other, honest_, "returned-adapter", issued);
    FAIL() << "expected a fingerprint error";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not the one the bundle"), std::string::npos) << e.what();
  }
}

TEST_F(PluginIntegrity, AnAlteredOrDamagedBundleIsRefused) {
  namespace fs = std::filesystem;
  auto expect_refused = [&](const std::string& dir, const std::string& what) {
    try {
      ot::read_issued_adapter(dir, *full_);
      ADD_FAILURE() << "accepted " << dir;
    } catch (const ot::Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  auto copy_with_config = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    fs::copy(tmp_.file("bundle"), tmp_.file(name), fs::copy_options::recursive);
    auto cfg = nlohmann::json::parse(ot::read_text_file(tmp_.file(name + "/config.json")));
    edit(cfg);
    std::ofstream(tmp_.file(name + "/config.json")) << cfg.dump(2);
    return tmp_.file(name);
  };
  expect_refused(copy_with_config("origin", [](nlohmann::json& c) { c["offsite"]["block_origin"] = {0, 2, 3}; }),
                 "block_origin does not follow from the adapter split and kept_blocks");
  expect_refused(copy_with_config("wider", [](nlohmann::json& c) { c["offsite"]["adapter"]["top"] = 2; }),
                 "offsite section:");
  expect_refused(copy_with_config("fp", [](nlohmann::json& c) { c["offsite"]["fingerprint"] = "00000000deadbeef"; }),
                 "but its offsite section records 00000000deadbeef");
  expect_refused(copy_with_config("version", [](nlohmann::json& c) { c["offsite"]["format_version"] = 7; }),
                 "format_version 7");
  // Weights altered: another token table under the recorded fingerprint; a stray tensor.
  auto stored = ot::SafetensorsFile::open(tmp_.file("bundle/model.safetensors")).all();
  for (auto& kv : stored) kv.second = kv.second.clone();
  auto table = stored;
  table["model.decoder.embed_tokens.weight"].add_(1.0);
  fs::create_directories(tmp_.file("table"));
  fs::copy(tmp_.file("bundle/config.json"), tmp_.file("table/config.json"));
  ot::save_safetensors(tmp_.file("table/model.safetensors"), table);
  expect_refused(tmp_.file("table"), "token table gives fingerprint");
  auto stray = stored;
  stray["model.decoder.layers.5.fc1.weight"] = stored.at("model.decoder.layers.0.fc1.weight");
  fs::create_directories(tmp_.file("stray"));
  fs::copy(tmp_.file("bundle/config.json"), tmp_.file("stray/config.json"));
  ot::save_safetensors(tmp_.file("stray/model.safetensors"), stray);
  expect_refused(tmp_.file("stray"), "holds tensor 'model.decoder.layers.5.fc1.weight', which its block map does not");
  // An ordinary checkpoint is not a bundle.
  expect_refused(fixture_dir("opt"), "not an offsite bundle");
}

TEST_F(PluginIntegrity, TheHeadPlugsInOnlyWhereTheBundleIssuedIt) {
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 1;
  o.train_head = true;
  auto layout = ot::make_layout(4, o, {0});
  EXPECT_TRUE(layout.head);
  ot::DecoderLM bundle = ot::build_bundle(full_, layout, o);
  ot::save_model(bundle, tmp_.file("bundle_head"));
  ot::DecoderLM loaded = ot::load_model(tmp_.file("bundle_head"));
  auto with_head = ot::extract_adapter(*loaded, {3}, true, ot::model_fingerprint(*full_), 4);
  EXPECT_TRUE(with_head.tensors.count("model.decoder.final_layer_norm.weight"));
  ot::DecoderLM target = ot::load_model(fixture_dir("opt"));
  ot::plug_in(*target, with_head, "returned-adapter", ot::read_issued_adapter(tmp_.file("bundle_head"), *target));
  std::string e = refusal(with_head);  // the same adapter against the bundle without the head
  EXPECT_NE(e.find("did not make the head trainable"), std::string::npos) << e;
}

// Bottleneck adapters are modules the full model lacks: plug-in adds them to the claimed
// adapter blocks only, and a bottleneck tensor anywhere else is refused.
TEST_F(PluginIntegrity, BottleneckModulesOnlyInsideTheIssuedBlocks) {
  ot::PeftOptions po;
  po.method = "adapter";
  po.adapter_size = 4;
  ot::apply_peft(bundle_, {0, 2}, po);  // bundle positions 0 and 2 = original blocks 0 and 3
  {
    torch::NoGradGuard ng;
    for (auto& p : bundle_->parameters()) p.add_(0.01);
  }
  auto a = ot::extract_adapter(*bundle_, {0, 3}, false, ot::model_fingerprint(*full_), 4,
                               {{"peft", ot::peft_to_json(po)}});
  size_t modules = 0;
  for (const auto& kv : a.tensors) modules += ot::is_peft_param(kv.first) ? 1 : 0;
  EXPECT_GT(modules, 0u);
  ot::DecoderLM target = ot::load_model(fixture_dir("opt"));
  ot::plug_in(*target, a, "returned-adapter", ot::read_issued_adapter(tmp_.file("bundle"), *target));
  torch::NoGradGuard ng;
  auto ids = torch::randint(0, 1000, {1, 8}, torch::kLong);
  ot::DecoderLM reference = ot::load_model(fixture_dir("opt"));
  EXPECT_FALSE(torch::equal(target->forward(ids).logits, reference->forward(ids).logits));
  // One of block 3's bottleneck tensors, renamed into block 1 (an emulator block).
  std::string stray;
  for (const auto& kv : a.tensors)
    if (ot::is_peft_param(kv.first) && kv.first.find(".layers.3.") != std::string::npos) stray = kv.first;
  ASSERT_FALSE(stray.empty());
  ot::Adapter bad = a;
  bad.tensors[std::string(stray).replace(stray.find(".layers.3."), 10, ".layers.1.")] = a.tensors.at(stray);
  std::string e = refusal(bad);
  EXPECT_NE(e.find(".layers.1."), std::string::npos) << e;
  EXPECT_NE(e.find("is not part of what the bundle"), std::string::npos) << e;
}

TEST(ContentHash, Sha256MatchesSha256sum) {
  EXPECT_EQ(ot::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ot::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ot::test::TempDir tmp;
  std::string big;
  for (int i = 0; i < 300000; ++i) big.push_back(static_cast<char>((i * 7919) & 0xff));  // crosses every block edge
  std::filesystem::create_directories(tmp.file("d/sub"));
  std::ofstream(tmp.file("d/a.bin"), std::ios::binary) << big;
  std::ofstream(tmp.file("d/sub/b.txt")) << "hello\n";
  std::ofstream(tmp.file("d/c 1.txt")) << std::string(55, 'x');  // padding spills into a second block
  auto shell = [](const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out.substr(0, 64);
  };
  EXPECT_EQ(ot::file_sha256(tmp.file("d/a.bin")), shell("sha256sum '" + tmp.file("d/a.bin") + "'"));
  EXPECT_EQ(ot::file_sha256(tmp.file("d/c 1.txt")), shell("sha256sum '" + tmp.file("d/c 1.txt") + "'"));
  EXPECT_EQ(ot::directory_sha256(tmp.file("d")),
            shell("cd '" + tmp.file("d") + "' && (find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum"));
  EXPECT_THROW(ot::file_sha256(tmp.file("missing")), ot::Error);
}

TEST(Compression, MagnitudePruneAndQuantizeFollowThePapersDefinitions) {
  ot::DecoderLM m = ot::load_model(fixture_dir("opt"));
  auto& block = m->block(1);
  auto w = block.named_parameters(true)["fc1.weight"].detach().clone();
  auto b = block.named_parameters(true)["fc1.bias"].detach().clone();
  ot::magnitude_prune(block, 0.3);
  auto pw = block.named_parameters(true)["fc1.weight"];
  const int64_t k = static_cast<int64_t>(double(w.numel()) * 0.3);
  auto thr = std::get<0>(w.abs().flatten().kthvalue(k));
  EXPECT_TRUE(torch::equal(pw, w * (w.abs() >= thr).to(w.scalar_type())));
  EXPECT_TRUE(torch::equal(block.named_parameters(true)["fc1.bias"], b)) << "1-D tensors are not pruned";
  EXPECT_NEAR((pw == 0).sum().item<double>() / double(w.numel()), 0.3, 0.01);

  ot::DecoderLM q = ot::load_model(fixture_dir("opt"));
  auto w2 = q->block(2).named_parameters(true)["fc2.weight"].detach().clone();
  ot::quantize_uniform(q->block(2), 3);
  auto qw = q->block(2).named_parameters(true)["fc2.weight"];
  auto uniq = std::get<0>(at::_unique(qw.flatten()));
  // With the paper's mid-range zero point the extremes sit at +-3.5 steps, exact ties that
  // round to +-4: 3 bits give at most 2^3 + 1 distinct values.
  EXPECT_LE(uniq.numel(), 9);
  EXPECT_GE(uniq.numel(), 7);
  auto zp = (w2.max() + w2.min()) / 2, scale = (w2.max() - w2.min()) / 7.0;
  EXPECT_TRUE(torch::allclose(qw, torch::round((w2 - zp) / scale) * scale + zp));
}

TEST(Peft, LoraMergeEqualsUnmergedForwardAndIsInitiallyANoOp) {
  for (const char* arch : {"opt", "gpt2", "llama"}) {
    ot::DecoderLM m = ot::load_model(fixture_dir(arch));
    torch::NoGradGuard ng;
    auto ids = torch::randint(0, 1000, {2, 9}, torch::kLong);
    auto base = m->forward(ids).logits;
    ot::PeftOptions p;
    p.method = "lora";
    p.lora_dropout = 0.0;
    ot::apply_peft(m, {0, 3}, p);
    EXPECT_TRUE(torch::allclose(m->forward(ids).logits, base)) << arch << ": B starts at zero";
    for (auto& item : m->named_parameters(true))
      if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0.0, 0.05);
    auto unmerged = m->forward(ids).logits;
    EXPECT_GT((unmerged - base).abs().max().item<double>(), 1e-3) << arch;
    ot::merge_peft(m);
    for (auto& item : m->named_parameters(true)) EXPECT_EQ(item.key().find("lora_"), std::string::npos);
    EXPECT_LT((m->forward(ids).logits - unmerged).abs().max().item<double>(), 1e-4) << arch;
  }
}

TEST(Peft, TrainableSetsPerMethod) {
  ot::DecoderLM m = ot::load_model(fixture_dir("opt"));
  ot::PeftOptions none;
  const int64_t per_block = m->num_parameters(ot::ModelPart::kBlocks) / 4;
  EXPECT_EQ(ot::set_trainable(m, {0, 3}, false, none), 2 * per_block);
  ot::PeftOptions bitfit;
  bitfit.method = "bitfit";
  int64_t n1d = 0;
  for (auto& p : m->block(0).parameters()) n1d += p.dim() == 1 ? p.numel() : 0;
  EXPECT_EQ(ot::set_trainable(m, {0, 3}, false, bitfit), 2 * n1d);
  ot::PeftOptions lora;
  lora.method = "lora";
  ot::apply_peft(m, {0, 3}, lora);
  // rank 4 on q,k,v,out (64 -> 64), fc1 (64 -> 256), fc2 (256 -> 64), per block.
  const int64_t per = 4 * 4 * (64 + 64) + 4 * (64 + 256) + 4 * (256 + 64);
  EXPECT_EQ(ot::set_trainable(m, {0, 3}, false, lora), 2 * per);
  ot::PeftOptions bad;
  bad.method = "lora";
  bad.lora_targets = {"nonexistent"};
  EXPECT_THROW(ot::apply_peft(m, {1}, bad), ot::Error);
}

}  // namespace

namespace {

using ot::test::TokenBlocks;

TEST(Distillation, KdLossIsTheNormalisedMse) {
  auto t = torch::tensor({{1.0, -2.0}, {3.0, 0.0}});
  auto s = torch::tensor({{0.0, -2.0}, {1.0, 1.0}});
  // rms(T) = sqrt((1 + 4 + 9 + 0) / 4) = sqrt(3.5); diffs 1, 0, 2, -1 -> mean(d^2) / 3.5
  EXPECT_NEAR(ot::kd_loss(t, s).item<double>(), (1.0 + 0.0 + 4.0 + 1.0) / 4.0 / 3.5, 1e-7);
}

// Layer-wise KD (FedBiOT): every emulator block against the teacher block whose output the
// next kept block reads, averaged; keeping the whole middle makes it 0, a dropped block
// gives the mean worked out block by block here.
TEST(Distillation, LayerwiseKdMatchesEachBlockToItsTeacherBlock) {
  ot::DecoderLM full = ot::load_model(fixture_dir("llama"));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 0;
  ot::DistillOptions lw{0.0, 1.0, /*layerwise=*/true};
  TokenBlocks data(4, 16, 1000, 5);
  const ot::Batch b = data.batch({0, 1, 2, 3});
  auto kd_of = [&](ot::Distiller& d) {
    torch::NoGradGuard ng;
    ot::Metrics m;
    d.loss(b, m);
    return m.at("kd");
  };
  {  // 1 + 3 blocks: the middle kept whole
    auto layout = ot::make_layout(4, o, ot::select_middle_blocks(3, 3, "uniform"));
    ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
    ot::Distiller d(bundle.ptr(), full.ptr(), layout, lw);
    EXPECT_EQ(d.layerwise_targets(), (std::vector<int64_t>{1, 2, 3}));
    EXPECT_LT(kd_of(d), 1e-12);
  }
  // Middle blocks 1 and 3 kept of 1..3: block 1 stands for 1-2 (the next kept block, 3, reads
  // block 2's output), block 3 for itself.
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(3, 2, "0,2"));
  ASSERT_EQ(layout.block_origin, (std::vector<int64_t>{0, 1, 3}));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  ot::Distiller d(bundle.ptr(), full.ptr(), layout, lw);
  EXPECT_EQ(d.layerwise_targets(), (std::vector<int64_t>{2, 3}));
  torch::NoGradGuard ng;
  auto ctx = full->make_context(b.input_ids, at::Tensor(), at::Tensor(), 0);
  at::Tensor x = full->embed(b.input_ids, ctx);
  x = full->run_block(0, x, ctx);
  const at::Tensor t1 = full->run_block(1, x, ctx), t2 = full->run_block(2, t1, ctx), t3 = full->run_block(3, t2, ctx);
  const at::Tensor s1 = bundle->run_block(1, x, ctx), s2 = bundle->run_block(2, s1, ctx);
  const double expected = (ot::kd_loss(t2, s1).item<double>() + ot::kd_loss(t3, s2).item<double>()) / 2;
  EXPECT_NEAR(kd_of(d), expected, 1e-6 * expected);
  // The output KD of the same batch is the last term alone.
  ot::Distiller out(bundle.ptr(), full.ptr(), layout, ot::DistillOptions{0.0, 1.0});
  EXPECT_NEAR(kd_of(out), ot::kd_loss(t3, s2).item<double>(), 1e-6);
  // With the depth kept (repeat), each position is matched to the block at its place.
  o.repeat = true;
  auto repeated = ot::make_layout(4, o, ot::select_middle_blocks(3, 2, "0,2"));
  ot::DecoderLM rb = ot::build_bundle(full, repeated, o);
  ot::Distiller dr(rb.ptr(), full.ptr(), repeated, lw);
  EXPECT_EQ(dr.layerwise_targets(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Distillation, TrainingTheEmulatorLowersTheKdLoss) {
  at::set_num_threads(1);
  for (const char* arch : {"opt", "llama"}) {
    ot::DecoderLM full = ot::load_model(fixture_dir(arch));
    ot::EmulatorOptions o;
    o.bottom = 1;
    o.top = 1;
    auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
    ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
    ot::Distiller d(bundle.ptr(), full.ptr(), layout, ot::DistillOptions{0.0, 1.0});
    auto params = d.trainable();
    EXPECT_EQ(params.size(), bundle->block(1).parameters().size()) << "only the emulator block trains";
    TokenBlocks data(8, 16, 1000, 3);
    auto kd_on = [&](const ot::Batch& b) {
      torch::NoGradGuard ng;
      ot::Metrics m;
      d.loss(b, m);
      return m.at("kd");
    };
    auto probe = data.batch({0, 1, 2, 3, 4, 5, 6, 7});
    double before = kd_on(probe);
    auto frozen = bundle->block(0).named_parameters(true)["self_attn.q_proj.weight"].clone();
    ot::TrainerOptions to;
    to.lr = 2e-3;
    to.epochs = 20;
    to.batch_size = 4;
    to.schedule = "constant";
    ot::Trainer t(params, to);
    t.fit(data, [&](const ot::Batch& b, ot::Metrics& m) { return d.loss(b, m); });
    double after = kd_on(probe);
    EXPECT_LT(after, 0.5 * before) << arch << ": " << before << " -> " << after;
    EXPECT_TRUE(torch::equal(bundle->block(0).named_parameters(true)["self_attn.q_proj.weight"], frozen))
        << "the adapter stays frozen during distillation";
  }
}

}  // namespace

namespace {

TEST(Cka, LinearCkaIsInvariantToRotationAndScale) {
  torch::manual_seed(0);
  auto x = torch::randn({200, 16});
  auto q = std::get<0>(torch::linalg_qr(torch::randn({16, 16})));
  EXPECT_NEAR(ot::linear_cka(x, x), 1.0, 1e-9);
  EXPECT_NEAR(ot::linear_cka(x, torch::mm(x, q) * 3.0), 1.0, 1e-6);
  EXPECT_LT(ot::linear_cka(x, torch::randn({200, 16})), 0.3);
}

TEST(Cka, ClusteringMergesTheMostSimilarNeighboursAndKeepsMiddles) {
  // 6 layers: {0,1,2} very similar, {3,4} similar, 5 alone.
  std::vector<std::vector<double>> s(6, std::vector<double>(6, 0.0));
  auto set = [&](int i, double v) { s[i][i + 1] = s[i + 1][i] = v; };
  set(0, 0.99);
  set(1, 0.98);
  set(2, 0.10);
  set(3, 0.95);
  set(4, 0.20);
  EXPECT_EQ(ot::cluster_adjacent_layers(s, 3), (std::vector<int64_t>{1, 4, 5}));  // [0,1,2] [3,4] [5]
  EXPECT_EQ(ot::cluster_adjacent_layers(s, 6), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

// The matrix holds linear_cka of every pair (each representation centred once), so the
// recorded heat map is the similarity the paper defines.
TEST(Cka, MatrixIsLinearCkaOfEveryPair) {
  torch::manual_seed(3);
  const at::Tensor base = torch::randn({40, 6});
  const std::vector<at::Tensor> reps = {base, base.mm(torch::randn({6, 8})) + 0.1 * torch::randn({40, 8}),
                                        torch::randn({40, 5}), torch::full({40, 3}, 2.0)};
  const auto sim = ot::linear_cka_matrix(reps);
  ASSERT_EQ(sim.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_EQ(sim[i].size(), 4u);
    for (size_t j = 0; j < 4; ++j) {
      if (i == j) continue;
      EXPECT_NEAR(sim[i][j], ot::linear_cka(reps[i], reps[j]), 1e-12) << i << "," << j;
      EXPECT_DOUBLE_EQ(sim[i][j], sim[j][i]);
    }
  }
  EXPECT_DOUBLE_EQ(sim[0][0], 1.0);
  EXPECT_DOUBLE_EQ(sim[3][3], 0.0);  // constant: no variance to compare
  EXPECT_GT(sim[0][1], sim[0][2]);   // a linear map of X is more similar to X than noise is
}

TEST(Cka, SelectsFromRealActivations) {
  ot::DecoderLM m = ot::load_model(fixture_dir("llama"));
  TokenBlocks data(4, 16, 1000, 9);
  const ot::CkaSelection cka = ot::cka_select_middle_blocks(m, 1, 1, 1, {data.batch({0, 1}), data.batch({2, 3})});
  const auto& kept = cka.kept;
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_GE(kept[0], 0);
  EXPECT_LT(kept[0], 2);
  // The recorded matrix: the middle blocks 1 and 2, symmetric, 1 on the diagonal, and the
  // pair's value in [0, 1].
  EXPECT_EQ(cka.first_block, 1);
  ASSERT_EQ(cka.similarity.size(), 2u);
  ASSERT_EQ(cka.similarity[0].size(), 2u);
  EXPECT_DOUBLE_EQ(cka.similarity[0][0], 1.0);
  EXPECT_DOUBLE_EQ(cka.similarity[1][1], 1.0);
  EXPECT_DOUBLE_EQ(cka.similarity[0][1], cka.similarity[1][0]);
  EXPECT_GT(cka.similarity[0][1], 0.0);
  EXPECT_LE(cka.similarity[0][1], 1.0 + 1e-12);
}

}  // namespace
