// tests/unit/test_eva_vit.cpp: EVA image encoders from LAVIS's layout (checkpoint/eva_vit.h).
// A random encoder in LAVIS's eva_vit.py names is saved with torch.save's format, converted by
// `ot convert eva-vit`, and the converted model's every block output checked against EVA's
// forward written here from LAVIS's definition over the original tensors (fused qkv with
// q_bias / zero / v_bias, scale head_dim^-0.5, pre-LN with eps 1e-6, exact GELU, no final
// norm). Also: BLIP-2's layout (visual_encoder + ln_vision under "model"), a classifier head,
// the refusals, and the offsite workflow on a converted encoder through the CLI.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoint/eva_vit.h"
#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/safetensors.h"
#include "hf_fixtures.h"
#include "model/load.h"
#include "model/vision_encoder.h"
#include "offsite/emulator.h"
#include "test_support.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using ot::test::max_abs_diff;
namespace F = torch::nn::functional;

// A small EVA: width C, H heads, `depth` blocks, patches of P on images of S, MLP width Fw
// (not a multiple of C, as EVA-ViT-g's 6143).
constexpr int64_t C = 24, H = 4, kDepth = 4, P = 8, S = 32, Fw = 61;

ot::StateDict random_eva(bool qkv_bias, int64_t seed) {
  torch::manual_seed(seed);
  auto r = [](std::vector<int64_t> shape, double scale = 0.2) { return torch::randn(shape) * scale; };
  ot::StateDict sd;
  const int64_t N = (S / P) * (S / P);
  sd["cls_token"] = r({1, 1, C});
  sd["pos_embed"] = r({1, N + 1, C});
  sd["patch_embed.proj.weight"] = r({C, 3, P, P}, 0.05);
  sd["patch_embed.proj.bias"] = r({C});
  for (int64_t i = 0; i < kDepth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    sd[b + "norm1.weight"] = 1 + r({C});
    sd[b + "norm1.bias"] = r({C});
    sd[b + "attn.qkv.weight"] = r({3 * C, C});
    if (qkv_bias) {
      sd[b + "attn.q_bias"] = r({C});
      sd[b + "attn.v_bias"] = r({C});
    }
    sd[b + "attn.proj.weight"] = r({C, C});
    sd[b + "attn.proj.bias"] = r({C});
    sd[b + "norm2.weight"] = 1 + r({C});
    sd[b + "norm2.bias"] = r({C});
    sd[b + "mlp.fc1.weight"] = r({Fw, C});
    sd[b + "mlp.fc1.bias"] = r({Fw});
    sd[b + "mlp.fc2.weight"] = r({C, Fw});
    sd[b + "mlp.fc2.bias"] = r({C});
  }
  return sd;
}

// LAVIS's EVA forward over its own tensors: the patch embedding, then each block (B, T, C).
struct EvaReference {
  at::Tensor embeddings;
  std::vector<at::Tensor> blocks;
};
EvaReference eva_forward(const ot::StateDict& sd, const at::Tensor& pixels, const std::string& prefix = "") {
  auto w = [&](const std::string& k) { return sd.at(prefix + k).to(torch::kDouble); };
  const int64_t B = pixels.size(0), D = C / H;
  at::Tensor x = F::conv2d(pixels.to(torch::kDouble), w("patch_embed.proj.weight"),
                           F::Conv2dFuncOptions().bias(w("patch_embed.proj.bias")).stride(P));
  x = x.flatten(2).transpose(1, 2);  // (B, N, C)
  x = torch::cat({w("cls_token").expand({B, 1, C}), x}, 1) + w("pos_embed");
  EvaReference out;
  out.embeddings = x;
  auto ln = [&](const at::Tensor& t, const std::string& k) {
    return F::layer_norm(t, F::LayerNormFuncOptions({C}).weight(w(k + ".weight")).bias(w(k + ".bias")).eps(1e-6));
  };
  for (int64_t i = 0; i < kDepth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const int64_t T = x.size(1);
    at::Tensor bias = sd.count(prefix + b + "attn.q_bias")
                          ? torch::cat({w(b + "attn.q_bias"), torch::zeros({C}, torch::kDouble), w(b + "attn.v_bias")})
                          : torch::zeros({3 * C}, torch::kDouble);
    at::Tensor qkv = F::linear(ln(x, b + "norm1"), w(b + "attn.qkv.weight"), bias)
                         .reshape({B, T, 3, H, D})
                         .permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
    at::Tensor q = qkv[0] * std::pow(double(D), -0.5), k = qkv[1], v = qkv[2];
    at::Tensor a = torch::softmax(torch::matmul(q, k.transpose(-2, -1)), -1);
    at::Tensor o = torch::matmul(a, v).transpose(1, 2).reshape({B, T, C});
    x = x + F::linear(o, w(b + "attn.proj.weight"), w(b + "attn.proj.bias"));
    at::Tensor f = F::linear(ln(x, b + "norm2"), w(b + "mlp.fc1.weight"), w(b + "mlp.fc1.bias"));
    x = x + F::linear(torch::gelu(f), w(b + "mlp.fc2.weight"), w(b + "mlp.fc2.bias"));
    out.blocks.push_back(x);
  }
  return out;
}

void save_torch(const std::string& path, const ot::StateDict& sd, const std::string& entry = "") {
  c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [k, v] : sd) d.insert(k, v);
  std::vector<char> bytes;
  if (entry.empty()) {
    bytes = torch::pickle_save(d);
  } else {
    c10::impl::GenericDict outer(c10::StringType::get(), c10::DictType::create(c10::StringType::get(),
                                                                              c10::TensorType::get()));
    outer.insert(entry, d);
    bytes = torch::pickle_save(outer);
  }
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

ot::test::CliResult convert(const std::string& args) { return ot::test::run_cli("convert eva-vit " + args); }

TEST(EvaVit, ConvertedEncoderComputesLavisForward) {
  ot::test::TempDir tmp;
  const ot::StateDict sd = random_eva(/*qkv_bias=*/true, 1);
  save_torch(tmp.file("eva_vit.pth"), sd);
  auto r = convert("--checkpoint " + tmp.file("eva_vit.pth") + " --num-heads 4 --out " + tmp.file("eva"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 blocks of width 24, ViTModel, no final LayerNorm"), std::string::npos) << r.out;
  const auto cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("eva/config.json")));
  EXPECT_EQ(cfg["model_type"], "eva_vit");
  EXPECT_EQ(cfg["intermediate_size"], Fw);
  EXPECT_EQ(cfg["image_size"], S);
  EXPECT_FALSE(cfg["final_layernorm"].get<bool>());

  ot::VisionEncoder m = ot::load_vision_model(tmp.file("eva"));
  m->to(torch::kDouble);
  torch::NoGradGuard ng;
  const at::Tensor pixels = torch::randn({2, 3, S, S});
  ot::VisionForwardOptions o;
  o.hidden_states = true;
  const ot::VisionOutput got = m->forward(pixels.to(torch::kDouble), o);
  const EvaReference ref = eva_forward(sd, pixels);
  EXPECT_LE(max_abs_diff(got.embeddings, ref.embeddings), 1e-12);
  ASSERT_EQ(got.block_outputs.size(), static_cast<size_t>(kDepth));
  for (int64_t i = 0; i < kDepth; ++i) EXPECT_LE(max_abs_diff(got.block_outputs[i], ref.blocks[i]), 1e-10) << i;
  // No final norm: the sequence is the last block's output, the pooled token its class token.
  EXPECT_LE(max_abs_diff(got.last_hidden_state, ref.blocks.back()), 1e-10);
  EXPECT_LE(max_abs_diff(got.pooler_output, ref.blocks.back().select(1, 0)), 1e-10);
  // In float32, as a user runs it, within the parity tolerance.
  ot::VisionEncoder m32 = ot::load_vision_model(tmp.file("eva"));
  EXPECT_LE(max_abs_diff(m32->forward(pixels).last_hidden_state, ref.blocks.back()), 1e-4);

  // The written checkpoint reloads to the same config and weights (model_type kept).
  ot::save_model(m32, tmp.file("saved"));
  const auto saved = nlohmann::json::parse(ot::read_text_file(tmp.file("saved/config.json")));
  EXPECT_EQ(saved["model_type"], "eva_vit");
  EXPECT_FALSE(saved["final_layernorm"].get<bool>());
  r = ot::test::run_cli("inspect " + tmp.file("eva"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("eva_vit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no final LayerNorm"), std::string::npos) << r.out;
}

// BLIP-2's checkpoints hold {"model": state_dict} with the encoder under visual_encoder. and
// its final norm as ln_vision (a default LayerNorm: eps 1e-5); the rest is left out.
TEST(EvaVit, Blip2CheckpointKeepsLnVisionAsTheFinalNorm) {
  ot::test::TempDir tmp;
  const ot::StateDict eva = random_eva(/*qkv_bias=*/true, 2);
  ot::StateDict blip2;
  for (const auto& [k, v] : eva) blip2["visual_encoder." + k] = v;
  blip2["ln_vision.weight"] = 1 + torch::randn({C}) * 0.2;
  blip2["ln_vision.bias"] = torch::randn({C}) * 0.2;
  blip2["query_tokens"] = torch::randn({1, 4, C});
  blip2["Qformer.bert.embeddings.LayerNorm.weight"] = torch::ones({C});
  save_torch(tmp.file("blip2.pth"), blip2, "model");

  auto r = convert("--checkpoint " + tmp.file("blip2.pth") + " --num-heads 4 --out " + tmp.file("eva"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("entry 'model' is a dict"), std::string::npos) << r.err;
  EXPECT_FALSE(ot::dir_exists(tmp.file("eva")));

  r = convert("--checkpoint " + tmp.file("blip2.pth") + " --state-dict-key model --num-heads 4 --out " +
              tmp.file("eva"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(", final LayerNorm"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("left out 2 tensor(s)"), std::string::npos) << r.out;
  ot::VisionEncoder m = ot::load_vision_model(tmp.file("eva"));
  m->to(torch::kDouble);
  torch::NoGradGuard ng;
  const at::Tensor pixels = torch::randn({2, 3, S, S});
  const at::Tensor last = eva_forward(eva, pixels).blocks.back();
  const at::Tensor normed = F::layer_norm(last, F::LayerNormFuncOptions({C})
                                                    .weight(blip2.at("ln_vision.weight").to(torch::kDouble))
                                                    .bias(blip2.at("ln_vision.bias").to(torch::kDouble))
                                                    .eps(1e-5));
  EXPECT_LE(max_abs_diff(m->forward(pixels.to(torch::kDouble)).last_hidden_state, normed), 1e-10);

  r = convert("--checkpoint " + tmp.file("blip2.pth") + " --state-dict-key optimizer --num-heads 4 --out " +
              tmp.file("other"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no key 'optimizer'"), std::string::npos) << r.err;
}

// Without q_bias / v_bias the projections have no bias; a final norm (`norm`) and a `head`
// make a ViTForImageClassification on the normed class token.
TEST(EvaVit, NormAndHeadMakeAClassifier) {
  ot::StateDict sd = random_eva(/*qkv_bias=*/false, 3);
  sd["norm.weight"] = 1 + torch::randn({C}) * 0.2;
  sd["norm.bias"] = torch::randn({C}) * 0.2;
  sd["head.weight"] = torch::randn({5, C}) * 0.2;
  sd["head.bias"] = torch::randn({5}) * 0.2;
  const ot::EvaVitImport m = ot::import_eva_vit(sd, "eva.pth", 4);
  EXPECT_EQ(m.config["architectures"][0], "ViTForImageClassification");
  EXPECT_EQ(m.config["id2label"].size(), 5u);
  EXPECT_FALSE(m.config["qkv_bias"].get<bool>());
  EXPECT_FALSE(m.weights.count("vit.encoder.layer.0.attention.attention.key.bias"));
  ot::test::TempDir tmp;
  ot::save_hf_checkpoint(tmp.file("eva"), m.config, m.weights);
  ot::VisionEncoder model = ot::load_vision_model(tmp.file("eva"));
  ASSERT_TRUE(model->has_classifier());
  model->to(torch::kDouble);
  torch::NoGradGuard ng;
  const at::Tensor pixels = torch::randn({3, 3, S, S});
  const at::Tensor last = eva_forward(sd, pixels).blocks.back();
  const at::Tensor cls = F::layer_norm(last, F::LayerNormFuncOptions({C})
                                                 .weight(sd.at("norm.weight").to(torch::kDouble))
                                                 .bias(sd.at("norm.bias").to(torch::kDouble))
                                                 .eps(1e-6))
                             .select(1, 0);
  const at::Tensor logits = F::linear(cls, sd.at("head.weight").to(torch::kDouble), sd.at("head.bias").to(torch::kDouble));
  EXPECT_LE(max_abs_diff(model->forward(pixels.to(torch::kDouble)).logits, logits), 1e-10);
}

void expect_refused(const ot::StateDict& sd, int64_t heads, std::vector<std::string> parts) {
  try {
    ot::import_eva_vit(sd, "eva.pth", heads);
    ADD_FAILURE() << "accepted; expected an error with '" << parts.front() << "'";
  } catch (const ot::Error& e) {
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << what;
  }
}

TEST(EvaVit, WhatIsNotAViTBlockIsRefusedByName) {
  const ot::StateDict sd = random_eva(true, 4);
  ot::StateDict s = sd;
  s["blocks.1.gamma_1"] = torch::ones({C});
  expect_refused(s, 4, {"eva.pth", "'blocks.1.gamma_1'", "layer scale"});
  s = sd;
  s["rel_pos_bias.relative_position_bias_table"] = torch::zeros({10, H});
  expect_refused(s, 4, {"relative position bias"});
  s = sd;
  s["blocks.0.mlp.w1.weight"] = torch::zeros({Fw, C});
  expect_refused(s, 4, {"EVA-02"});
  s = sd;
  s["blocks.0.attn.extra"] = torch::zeros({C});
  expect_refused(s, 4, {"1 tensor(s) are not part of an EVA ViT", "'blocks.0.attn.extra'"});
  s = sd;
  s.erase("blocks.2.attn.v_bias");
  expect_refused(s, 4, {"'blocks.2.attn.v_bias'"});
  s = sd;
  s["blocks.1.mlp.fc1.weight"] = torch::zeros({Fw + 1, C});
  expect_refused(s, 4, {"'blocks.1.mlp.fc1.weight'", "[62, 24]", "[61, 24]"});
  s = sd;
  s["pos_embed"] = torch::zeros({1, 15, C});
  expect_refused(s, 4, {"14 patch positions, not a square grid"});
  expect_refused(sd, 0, {"width 24 is not EVA-ViT-g's 1408", "--num-heads"});
  expect_refused(sd, 5, {"not divisible by 5"});
  expect_refused({{"weight", torch::zeros({2})}}, 4, {"no 'cls_token'", "eva_vit_g.pth"});
}

// The converted encoder goes through the offsite workflow: the owner's bundle of kept blocks
// is the original with only those blocks, and an adapter fine-tuned by the data owner plugs
// into a checkpoint that is still an eva_vit, carrying exactly the returned tensors.
TEST(EvaVit, OffsiteWorkflowOnAConvertedEncoder) {
  ot::test::TempDir tmp;
  save_torch(tmp.file("eva_vit.pth"), random_eva(true, 5));
  ASSERT_EQ(convert("--checkpoint " + tmp.file("eva_vit.pth") + " --num-heads 4 --out " + tmp.file("eva")).exit_code, 0);
  {
    ot::VisionEncoder full = ot::load_vision_model(tmp.file("eva"));
    ot::EmulatorOptions o;
    o.bottom = 1;
    o.top = 1;
    auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
    ot::VisionEncoder bundle = ot::build_bundle(full, layout, o);
    ASSERT_EQ(bundle->num_blocks(), 3);
    torch::NoGradGuard ng;
    const at::Tensor pixels = torch::randn({2, 3, S, S});
    at::Tensor h = full->embed(pixels);
    for (int64_t b : layout.block_origin) h = full->run_block(b, h, full->make_context());
    EXPECT_TRUE(torch::equal(bundle->forward(pixels).last_hidden_state, full->head(h).last_hidden_state));
  }
  // Random CIFAR-10 batches: 64 training and 32 test images.
  const std::string cifar = tmp.file("cifar");
  std::filesystem::create_directories(cifar);
  torch::manual_seed(6);
  for (const auto& [file, n] : std::vector<std::pair<std::string, int64_t>>{{"data_batch_1.bin", 64}, {"test_batch.bin", 32}}) {
    at::Tensor pix = torch::randint(0, 256, {n, 3 * 32 * 32}, torch::kByte);
    std::string records;
    for (int64_t i = 0; i < n; ++i) {
      records += static_cast<char>(i % 10);
      records.append(reinterpret_cast<const char*>(pix[i].data_ptr<uint8_t>()), 3 * 32 * 32);
    }
    ot::write_text_file_atomically(ot::path_join(cifar, file), records);
  }
  const std::string data = "cifar10=" + cifar;
  auto run = [&](const std::string& args) {
    auto r = ot::test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    return r;
  };
  run("emulator --model " + tmp.file("eva") + " --adapter 1,1 --emulator-layers 1 --num-labels 10 --distill-images " +
      data + " --max-steps 2 --batch-size 16 --out " + tmp.file("bundle"));
  run("finetune --model " + tmp.file("bundle") + " --images " + data + " --train-head --head-lr-scale 10"
      " --max-steps 3 --batch-size 16 --max-eval-examples 16 --out " + tmp.file("adapter"));
  run("plugin --model " + tmp.file("eva") + " --bundle " + tmp.file("bundle") + " --adapter " + tmp.file("adapter") +
      " --out " + tmp.file("plugged"));
  const auto plugged_cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("plugged/config.json")));
  EXPECT_EQ(plugged_cfg["model_type"], "eva_vit");
  EXPECT_EQ(plugged_cfg["architectures"][0], "ViTForImageClassification");
  const ot::StateDict returned = ot::SafetensorsFile::open(tmp.file("adapter/adapter.safetensors")).all();
  const ot::StateDict plugged = ot::SafetensorsFile::open(tmp.file("plugged/model.safetensors")).all();
  ASSERT_TRUE(returned.count("classifier.weight"));
  for (const auto& [name, t] : returned) EXPECT_TRUE(plugged.at(name).equal(t)) << name;
  auto r = run("eval --model " + tmp.file("plugged") + " --images " + data + " --output " + tmp.file("plugin.json"));
  const auto res = nlohmann::json::parse(ot::read_text_file(tmp.file("plugin.json")));
  EXPECT_GT(res["results"]["cifar10"]["acc_stderr"].get<double>(), 0.0);
}

}  // namespace
