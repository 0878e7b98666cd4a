// tests/unit/test_vision.cpp: the vision encoders (model/vision_encoder.h) against
// transformers 4.35.2 (../shared/fixtures/hf-vision/, README there): a ViTForImageClassification
// (logits, loss, every hidden state, last_hidden_state) and a CLIPVisionModelWithProjection
// (embeddings before and after pre_layrnorm, every block, pooler_output, image_embeds), from
// both checkpoint files; config parsing and its errors; pixel checks; position resizing;
// the saved model reloading to the same outputs; gradients reaching every parameter.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/safetensors.h"
#include "checkpoint/torch_bin.h"
#include "data/image_datasets.h"
#include "data/image_processor.h"
#include "dist/context.h"
#include "eval/image_classification.h"
#include "hf_fixtures.h"
#include "model/layers.h"
#include "model/load.h"
#include "model/vision_encoder.h"
#include "offsite/adapter.h"
#include "offsite/emulator.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using ot::test::json_tensor;
using ot::test::max_abs_diff;

std::string vision_dir(const std::string& name) { return ot::test::shared_path("fixtures/hf-vision/" + name); }

const nlohmann::json& vision_fixture(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, nlohmann::json::parse(ot::read_text_file(vision_dir(name) + ".json"))).first;
  return it->second;
}

constexpr double kTol = 1e-4;

TEST(VisionParity, ViTForImageClassificationMatchesTransformers) {
  const auto& f = vision_fixture("vit");
  ot::VisionEncoder model = ot::load_vision_model(vision_dir("vit"));
  EXPECT_EQ(model->config().arch, ot::Arch::kViT);
  EXPECT_TRUE(model->has_classifier());
  EXPECT_FALSE(model->has_projection());
  at::Tensor pixels = json_tensor(f["pixel_values"], torch::kFloat);
  ot::VisionForwardOptions o;
  o.hidden_states = true;
  torch::NoGradGuard ng;
  ot::VisionOutput out = model->forward(pixels, o);
  EXPECT_LE(max_abs_diff(out.logits, json_tensor(f["logits"], torch::kFloat)), kTol);
  EXPECT_LE(max_abs_diff(out.last_hidden_state, json_tensor(f["last_hidden_state"], torch::kFloat)), kTol);
  at::Tensor hs = json_tensor(f["hidden_states"], torch::kFloat);  // (5, B, T, C)
  ASSERT_EQ(out.block_outputs.size(), 4u);
  EXPECT_LE(max_abs_diff(out.embeddings, hs[0]), kTol);
  for (int64_t i = 0; i < 4; ++i) EXPECT_LE(max_abs_diff(out.block_outputs[i], hs[i + 1]), kTol) << "block " << i;
  at::Tensor labels = json_tensor(f["labels"], torch::kLong);
  double loss = torch::nn::functional::cross_entropy(out.logits, labels).item<double>();
  EXPECT_NEAR(loss, f["loss"].get<double>(), 1e-5);
}

TEST(VisionParity, CLIPVisionModelWithProjectionMatchesTransformers) {
  const auto& f = vision_fixture("clip_vision");
  ot::VisionEncoder model = ot::load_vision_model(vision_dir("clip_vision"));
  EXPECT_EQ(model->config().arch, ot::Arch::kCLIPVision);
  EXPECT_TRUE(model->has_projection());
  EXPECT_FALSE(model->has_classifier());
  at::Tensor pixels = json_tensor(f["pixel_values"], torch::kFloat);
  ot::VisionForwardOptions o;
  o.hidden_states = true;
  torch::NoGradGuard ng;
  ot::VisionOutput out = model->forward(pixels, o);
  at::Tensor hs = json_tensor(f["hidden_states"], torch::kFloat);
  EXPECT_LE(max_abs_diff(out.embeddings, hs[0]), kTol);  // after pre_layrnorm
  for (int64_t i = 0; i < 4; ++i) EXPECT_LE(max_abs_diff(out.block_outputs[i], hs[i + 1]), kTol) << "block " << i;
  EXPECT_LE(max_abs_diff(out.last_hidden_state, json_tensor(f["last_hidden_state"], torch::kFloat)), kTol);
  EXPECT_LE(max_abs_diff(out.pooler_output, json_tensor(f["pooler_output"], torch::kFloat)), kTol);
  EXPECT_LE(max_abs_diff(out.image_embeds, json_tensor(f["image_embeds"], torch::kFloat)), kTol);
}

TEST(VisionParity, BothCheckpointFilesGiveTheSameWeights) {
  for (const char* name : {"vit", "clip_vision"}) {
    SCOPED_TRACE(name);
    ot::StateDict bin = ot::load_torch_bin(ot::path_join(vision_dir(name), "pytorch_model.bin"));
    ot::StateDict st = ot::SafetensorsFile::open(ot::path_join(vision_dir(name), "model.safetensors")).all();
    ot::VisionEncoder a = ot::load_vision_model(vision_dir(name));
    ot::StateDict ours = a->hf_state_dict();
    EXPECT_EQ(ours.size(), bin.size());
    for (const auto& kv : bin) {
      ASSERT_TRUE(ours.count(kv.first)) << kv.first;
      EXPECT_TRUE(torch::equal(ours.at(kv.first), kv.second)) << kv.first;
      ASSERT_TRUE(st.count(kv.first)) << kv.first;
      EXPECT_TRUE(torch::equal(st.at(kv.first), kv.second)) << kv.first;
    }
  }
}

TEST(VisionModel, SavedModelReloadsToTheSameOutputs) {
  for (const char* name : {"vit", "clip_vision"}) {
    SCOPED_TRACE(name);
    ot::VisionEncoder a = ot::load_vision_model(vision_dir(name));
    ot::test::TempDir tmp;
    const std::string dir = tmp.file("saved");
    ot::save_model(a, dir);
    ot::VisionEncoder b = ot::load_vision_model(dir);
    at::Tensor pixels = torch::randn({3, 3, 32, 32});
    torch::NoGradGuard ng;
    auto x = a->forward(pixels), y = b->forward(pixels);
    EXPECT_TRUE(torch::equal(x.last_hidden_state, y.last_hidden_state));
    EXPECT_TRUE(torch::equal(x.pooler_output, y.pooler_output));
    EXPECT_TRUE(ot::is_vision_model_dir(dir));
  }
}

TEST(VisionModel, GradientsReachEveryParameter) {
  for (const char* name : {"vit", "clip_vision"}) {
    SCOPED_TRACE(name);
    ot::VisionEncoder m = ot::load_vision_model(vision_dir(name));
    m->train();
    ot::VisionOutput out = m->forward(torch::randn({2, 3, 32, 32}));
    at::Tensor y = out.logits.defined() ? out.logits : out.image_embeds;
    y.pow(2).sum().backward();
    for (const auto& p : m->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(VisionModel, PixelsAreChecked) {
  ot::VisionEncoder m = ot::load_vision_model(vision_dir("vit"));
  torch::NoGradGuard ng;
  auto message = [&](const at::Tensor& px, bool interpolate) -> std::string {
    try {
      ot::VisionForwardOptions o;
      o.interpolate_positions = interpolate;
      m->forward(px, o);
    } catch (const ot::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(torch::randn({3, 32, 32}), false).find("expected shape (batch, 3, height, width)"), std::string::npos);
  EXPECT_NE(message(torch::randn({1, 1, 32, 32}), false).find("1 channels, but the model takes 3"), std::string::npos);
  EXPECT_NE(message(torch::randn({1, 3, 48, 48}), false).find("48 x 48 images, but the model was trained on 32 x 32"),
            std::string::npos);
  EXPECT_NE(message(torch::randn({1, 3, 4, 4}), true).find("smaller than one patch"), std::string::npos);
  EXPECT_EQ(message(torch::randn({1, 3, 48, 48}), true), "");
}

// With the checkpoint's own size, resizing is the identity; for another size the class
// position is kept, the grid has the new shape, and a constant grid stays constant (bicubic
// weights sum to one); the model then runs on the larger images.
TEST(VisionModel, PositionEmbeddingsResizeForOtherImageSizes) {
  torch::manual_seed(3);
  at::Tensor pos = torch::randn({1, 1 + 16, 8});
  EXPECT_TRUE(torch::equal(ot::nn::resize_patch_positions(pos, 4, 4, true), pos));
  EXPECT_TRUE(torch::equal(ot::nn::resize_patch_positions(pos, 4, 4, false), pos));
  for (bool vit : {true, false}) {
    at::Tensor r = ot::nn::resize_patch_positions(pos, 6, 8, vit);
    EXPECT_EQ(r.sizes(), at::IntArrayRef({1, 1 + 48, 8}));
    EXPECT_TRUE(torch::equal(r.narrow(1, 0, 1), pos.narrow(1, 0, 1)));
    // a constant grid stays constant under bicubic resizing (the weights sum to one)
    at::Tensor flat = torch::ones({1, 17, 8}) * 0.25;
    EXPECT_LE(max_abs_diff(ot::nn::resize_patch_positions(flat, 6, 8, vit), torch::ones({1, 49, 8}) * 0.25), 1e-6);
  }
  // and the model runs on 48 x 48 images (6 x 6 patches) when asked to resize
  ot::VisionEncoder m = ot::load_vision_model(vision_dir("clip_vision"));
  torch::NoGradGuard ng;
  ot::VisionForwardOptions o;
  o.interpolate_positions = true;
  EXPECT_EQ(m->forward(torch::randn({2, 3, 48, 48}), o).last_hidden_state.sizes(), at::IntArrayRef({2, 37, 64}));
}

TEST(VisionConfig, DefaultsAndErrors) {
  // transformers' defaults for keys save_pretrained leaves out
  ot::ModelConfig vit = ot::parse_model_config({{"model_type", "vit"}}, "c.json");
  EXPECT_EQ(vit.hidden_size, 768);
  EXPECT_EQ(vit.image_size, 224);
  EXPECT_EQ(vit.patch_size, 16);
  EXPECT_EQ(vit.num_patches(), 196);
  EXPECT_TRUE(vit.vit_pooler);
  EXPECT_DOUBLE_EQ(vit.norm_eps, 1e-12);
  ot::ModelConfig clip = ot::parse_model_config({{"model_type", "clip"}, {"vision_config", {{"patch_size", 16}}}},
                                                "c.json");
  EXPECT_EQ(clip.arch, ot::Arch::kCLIPVision);
  EXPECT_TRUE(clip.clip_two_towers);
  EXPECT_EQ(clip.projection_dim, 512);
  EXPECT_EQ(clip.patch_size, 16);
  EXPECT_EQ(clip.activation, "quick_gelu");
  // a full CLIP config is written back as its vision tower
  nlohmann::json back = ot::model_config_to_json(clip);
  EXPECT_EQ(back["model_type"], "clip_vision_model");
  EXPECT_EQ(back["projection_dim"], 512);
  EXPECT_EQ(ot::parse_model_config(back, "back.json").projection_dim, 512);

  auto message = [](const nlohmann::json& j) -> std::string {
    try {
      ot::parse_model_config(j, "cfg.json");
    } catch (const ot::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"model_type", "vit"}, {"image_size", 30}, {"patch_size", 8}})
                .find("image_size 30 is not a multiple of patch_size 8"),
            std::string::npos);
  EXPECT_NE(message({{"model_type", "vit"}, {"image_size", {32, 48}}}).find("square images"), std::string::npos);
  EXPECT_NE(message({{"model_type", "vit"}, {"hidden_act", "swish"}}).find("'swish' is not supported"),
            std::string::npos);
  EXPECT_NE(message({{"model_type", "clip"}}).find("key 'vision_config'"), std::string::npos);
  EXPECT_NE(message({{"model_type", "vit"}, {"architectures", {"ViTForMaskedImageModeling"}}})
                .find("ViTForMaskedImageModeling is not supported"),
            std::string::npos);
  EXPECT_NE(message({{"model_type", "vit"}, {"hidden_size", 30}, {"num_attention_heads", 4}}).find("not divisible"),
            std::string::npos);
}

TEST(VisionModel, LanguageAndVisionLoadersRefuseEachOther) {
  try {
    ot::load_model(vision_dir("vit"));
    FAIL() << "a ViT loaded as a language model";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a vision encoder"), std::string::npos) << e.what();
  }
  try {
    ot::load_vision_model(ot::test::fixture_dir("opt"));
    FAIL() << "an OPT loaded as a vision encoder";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a language model"), std::string::npos) << e.what();
  }
}

// `ot forward --pixels` writes the documented tensors (matching transformers), and `ot
// inspect` describes the encoder; wrong inputs fail with one message naming the file.
TEST(VisionCli, ForwardWithPixelsAndInspect) {
  const auto& f = vision_fixture("clip_vision");
  ot::test::TempDir tmp;
  ot::save_safetensors(tmp.file("px.safetensors"), {{"pixel_values", json_tensor(f["pixel_values"], torch::kFloat)}});
  auto r = ot::test::run_cli("forward --model " + vision_dir("clip_vision") + " --pixels " + tmp.file("px.safetensors") +
                             " --output " + tmp.file("out.safetensors") + " --hidden-states");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ot::StateDict out = ot::SafetensorsFile::open(tmp.file("out.safetensors")).all();
  for (const char* k : {"last_hidden_state", "pooler_output", "image_embeds", "embeddings", "hidden_states.3"})
    EXPECT_TRUE(out.count(k)) << k;
  EXPECT_FALSE(out.count("logits"));
  EXPECT_LE(max_abs_diff(out.at("image_embeds"), json_tensor(f["image_embeds"], torch::kFloat)), kTol);

  r = ot::test::run_cli("forward --model " + vision_dir("vit") + " --pixels " + tmp.file("px.safetensors") +
                        " --output " + tmp.file("vit.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = ot::SafetensorsFile::open(tmp.file("vit.safetensors")).all();
  EXPECT_EQ(out.at("logits").sizes(), at::IntArrayRef({2, 10}));
  EXPECT_FALSE(out.count("pooler_output"));  // ViTForImageClassification has no pooler

  // a file without pixel_values, a language model given pixels, a vision model given ids
  ot::save_safetensors(tmp.file("other.safetensors"), {{"images", torch::zeros({1, 3, 32, 32})}});
  r = ot::test::run_cli("forward --model " + vision_dir("vit") + " --pixels " + tmp.file("other.safetensors") +
                        " --output " + tmp.file("x.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no tensor 'pixel_values' (it holds 'images')"), std::string::npos) << r.err;
  ot::save_safetensors(tmp.file("small.safetensors"), {{"pixel_values", torch::zeros({1, 3, 16, 16})}});
  r = ot::test::run_cli("forward --model " + vision_dir("vit") + " --pixels " + tmp.file("small.safetensors") +
                        " --output " + tmp.file("x.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("small.safetensors: pixel_values: 16 x 16 images"), std::string::npos) << r.err;
  r = ot::test::run_cli("forward --model " + ot::test::fixture_dir("opt") + " --pixels " + tmp.file("px.safetensors") +
                        " --output " + tmp.file("x.safetensors"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is a language model: give --input"), std::string::npos) << r.err;
  EXPECT_FALSE(ot::file_exists(tmp.file("x.safetensors")));

  r = ot::test::run_cli("inspect " + vision_dir("vit"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("patch 8 (16 patches + class token)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("classifier, 10 labels"), std::string::npos) << r.out;
}

// Offsite-tuning of a vision encoder: the owner's emulator is the original with only the kept
// blocks; on disk it is an ordinary reduced-depth checkpoint; an untouched adapter plugs back
// bit for bit, a changed one lands in exactly its blocks, and one made for another model is
// refused.
class VisionOffsite : public ::testing::TestWithParam<std::string> {};

TEST_P(VisionOffsite, EmulatorComputesTheOriginalWithOnlyTheKeptBlocks) {
  ot::VisionEncoder full = ot::load_vision_model(vision_dir(GetParam()));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  EXPECT_EQ(layout.block_origin, (std::vector<int64_t>{0, 1, 3}));
  ot::VisionEncoder bundle = ot::build_bundle(full, layout, o);
  ASSERT_EQ(bundle->num_blocks(), 3);
  torch::NoGradGuard ng;
  at::Tensor pixels = torch::randn({2, 3, 32, 32});
  at::Tensor h = full->embed(pixels);
  for (int64_t b : layout.block_origin) h = full->run_block(b, h, full->make_context());
  ot::VisionOutput reference = full->head(h), got = bundle->forward(pixels);
  EXPECT_TRUE(torch::equal(got.last_hidden_state, reference.last_hidden_state));
  EXPECT_TRUE(torch::equal(got.pooler_output, reference.pooler_output));
  // with repetition the depth is kept: 4 blocks, the dropped one replaced by its neighbour
  o.repeat = true;
  auto repeated = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  EXPECT_EQ(ot::build_bundle(full, repeated, o)->num_blocks(), 4);
}

TEST_P(VisionOffsite, BundleOnDiskAndPluginAreExact) {
  ot::VisionEncoder full = ot::load_vision_model(vision_dir(GetParam()));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 1;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  ot::VisionEncoder bundle = ot::build_bundle(full, layout, o);
  ot::test::TempDir tmp;
  ot::save_model(bundle, tmp.file("bundle"));
  ot::VisionEncoder reloaded = ot::load_vision_model(tmp.file("bundle"));
  EXPECT_EQ(reloaded->block_origin(), layout.block_origin);
  EXPECT_EQ(reloaded->num_blocks(), 3);
  at::Tensor pixels = torch::randn({2, 3, 32, 32});
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(reloaded->forward(pixels).last_hidden_state, bundle->forward(pixels).last_hidden_state));
  }
  const std::string fp = ot::model_fingerprint(*full);
  EXPECT_EQ(ot::model_fingerprint(*reloaded), fp);
  ot::VisionEncoder target = ot::load_vision_model(vision_dir(GetParam()));
  const ot::IssuedAdapter issued = ot::read_issued_adapter(tmp.file("bundle"), *target);
  EXPECT_EQ(issued.fingerprint, fp);
  at::Tensor before;
  {
    torch::NoGradGuard ng;
    before = target->forward(pixels).pooler_output;
  }
  // untouched adapter: bit-exact
  auto adapter = ot::extract_adapter(*reloaded, layout.adapter_blocks(), false, fp, 4);
  ot::plug_in(*target, adapter, "adapter", issued);
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(target->forward(pixels).pooler_output, before));
  }
  // a changed adapter lands in exactly blocks 0 and 3 of the full model
  {
    torch::NoGradGuard ng;
    for (auto& p : reloaded->block(0).parameters()) p.add_(0.01);
  }
  auto changed = ot::extract_adapter(*reloaded, layout.adapter_blocks(), false, fp, 4);
  ot::plug_in(*target, changed, "adapter", issued);
  auto ours = target->hf_state_dict(), orig = full->hf_state_dict();
  int64_t moved = 0;
  for (const auto& kv : orig) {
    const bool in_block0 = kv.first.find(GetParam() == "vit" ? "encoder.layer.0." : "encoder.layers.0.") != std::string::npos;
    EXPECT_EQ(torch::equal(ours.at(kv.first), kv.second), !in_block0) << kv.first;
    moved += in_block0;
  }
  EXPECT_GT(moved, 0);
  // a bundle of the other vision model does not accept this adapter
  const std::string other = GetParam() == "vit" ? "clip_vision" : "vit";
  ot::VisionEncoder other_full = ot::load_vision_model(vision_dir(other));
  ot::save_model(other_full, tmp.file("other_full"));
  ot::VisionEncoder other_bundle = ot::build_bundle(other_full, layout, o);
  ot::save_model(other_bundle, tmp.file("other_bundle"));
  try {
    ot::check_adapter(adapter, ot::read_issued_adapter(tmp.file("other_bundle"), *other_full),
                      ot::AdapterTarget::kFullModel, "adapter");
    FAIL() << "an adapter of " << GetParam() << " was accepted by a bundle of " << other;
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Encoders, VisionOffsite, ::testing::Values("vit", "clip_vision"),
                         [](const auto& info) { return info.param; });

// `ot emulator` on a vision encoder writes a bundle `ot forward` and `ot inspect` read; the
// text-only steps are refused by name.
TEST(VisionCli, EmulatorBuildsAVisionBundle) {
  ot::test::TempDir tmp;
  auto r = ot::test::run_cli("emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 1 --out " +
                             tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ot::VisionEncoder b = ot::load_vision_model(tmp.file("bundle"));
  EXPECT_EQ(b->block_origin(), (std::vector<int64_t>{0, 1, 3}));
  r = ot::test::run_cli("inspect " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("offsite"), std::string::npos) << r.out;
  r = ot::test::run_cli("emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 1 --distill corpus.txt --out " +
                        tmp.file("b2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--distill reads a text corpus, which a vision encoder cannot take"), std::string::npos) << r.err;
  EXPECT_FALSE(ot::dir_exists(tmp.file("b2")));
}

// Top-1 / top-5 of the fixture ViT (10 classes) on a CIFAR-10 test batch written here: the
// same counts as the model's own logits ranked by hand, the harness's standard error, the
// same on a batch size that does not divide the data; a model without a classifier and labels
// beyond the classifier are refused.
TEST(VisionEval, ClassificationAccuracyWithStandardErrors) {
  ot::test::TempDir tmp;
  const int64_t n = 23;
  std::string records;
  torch::manual_seed(5);
  at::Tensor pix = torch::randint(0, 256, {n, 3 * 32 * 32}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    records += static_cast<char>(i % 10);
    for (int64_t j = 0; j < 3 * 32 * 32; ++j) records += static_cast<char>(pix[i][j].item<int64_t>());
  }
  ot::write_text_file_atomically(tmp.file("test_batch.bin"), records);
  ot::ImageDataset data = ot::load_image_dataset("cifar10", tmp.path(), "test");
  ASSERT_EQ(data.size(), n);
  ot::VisionEncoder vit = ot::load_vision_model(vision_dir("vit"));
  const ot::ImageProcessorConfig proc = ot::default_image_processor_config(32);
  auto rows = ot::evaluate_image_classification(vit, data, proc, "cifar10", 4, ot::dist::host_communicator());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].metric, "acc");
  EXPECT_EQ(rows[1].metric, "acc_top5");

  // by hand, all images in one batch
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  ot::ImageBatch batch = ot::make_image_batch(data, all, proc);
  at::Tensor logits;
  {
    torch::NoGradGuard ng;
    logits = vit->forward(batch.pixel_values).logits;
  }
  double k1 = 0, k5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = batch.labels[i].item<int64_t>();
    const at::Tensor row = logits[i];
    const int64_t above = row.gt(row[y]).sum().item<int64_t>();  // classes ranked above the label
    k1 += above == 0;
    k5 += above < 5;
  }
  EXPECT_DOUBLE_EQ(rows[0].value, k1 / n);
  EXPECT_DOUBLE_EQ(rows[1].value, k5 / n);
  const double p = k1 / n;
  EXPECT_NEAR(*rows[0].std_error, std::sqrt(p * (1 - p) * n / (n - 1)) / std::sqrt(double(n)), 1e-12);
  EXPECT_EQ(rows[0].n, n);
  EXPECT_GT(k5, k1);  // a random classifier ranks some labels second to fifth

  auto message = [&](ot::VisionEncoder& m, const ot::ImageDataset& d) -> std::string {
    try {
      ot::evaluate_image_classification(m, d, proc, "t", 4, ot::dist::host_communicator());
    } catch (const ot::Error& e) {
      return e.what();
    }
    return "";
  };
  ot::VisionEncoder clip = ot::load_vision_model(vision_dir("clip_vision"));
  EXPECT_NE(message(clip, data).find("has no classifier"), std::string::npos);
  ot::ImageDataset wide = data;
  wide.labels = wide.labels.clone();
  wide.labels[3] = 12;
  EXPECT_NE(message(vit, wide).find("label 12 is outside the model's 10 classes"), std::string::npos);

  // the same through `ot eval --images`
  auto r = ot::test::run_cli("eval --model " + vision_dir("vit") + " --images cifar10=" + tmp.path() +
                             " --batch-size 5 --output " + tmp.file("res.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto res = nlohmann::json::parse(ot::read_text_file(tmp.file("res.json")));
  EXPECT_DOUBLE_EQ(res["results"]["cifar10"]["acc"].get<double>(), k1 / n);
  EXPECT_DOUBLE_EQ(res["results"]["cifar10"]["acc_top5"].get<double>(), k5 / n);
  r = ot::test::run_cli("eval --model " + ot::test::fixture_dir("opt") + " --images cifar10=" + tmp.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is a language model"), std::string::npos) << r.err;
  r = ot::test::run_cli("eval --model " + vision_dir("vit") + " --images cifar10=" + tmp.file("nowhere"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
}

}  // namespace
