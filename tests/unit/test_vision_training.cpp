// tests/unit/test_vision_training.cpp: training vision encoders the offsite way. Classifiers
// (a new one for a dataset, CLIPForImageClassification's pooling, saved and reloaded), the
// classifier's learning-rate multiple, image batches for training (augmented per epoch) and
// the seeded validation split, feature-KD distillation of a vision emulator, and the whole
// workflow through the CLI on Fashion-MNIST: the owner's bundle with a classifier issued and
// a distilled emulator, the data owner's adapter, the owner's plug-in, and the three settings
// (full fine-tuning, OT emulator, OT plug-in) scored.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "checkpoint/safetensors.h"
#include "data/image_source.h"
#include "hf_fixtures.h"
#include "model/harmonizer.h"
#include "model/load.h"
#include "model/vision_encoder.h"
#include "offsite/adapter.h"
#include "offsite/cka.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "results/run_file.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

std::string vision_dir(const std::string& name) { return ot::test::shared_path("fixtures/hf-vision/" + name); }

const char* const kFashionMnist = "/usr/share/datasets/fashion-mnist";

// n random 32 x 32 RGB images, labels i % 10, as the CIFAR-10 batch `dir`/`file`.
void write_cifar_batch(const std::string& dir, const std::string& file, int64_t n, int64_t seed) {
  std::string records;
  torch::manual_seed(seed);
  at::Tensor pix = torch::randint(0, 256, {n, 3 * 32 * 32}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    records += static_cast<char>(i % 10);
    for (int64_t j = 0; j < 3 * 32 * 32; ++j) records += static_cast<char>(pix[i][j].item<int64_t>());
  }
  ot::write_text_file_atomically(ot::path_join(dir, file), records);
}

// The same as the test split of a CIFAR-10 folder, read back.
std::shared_ptr<const ot::ImageDataset> random_cifar(const std::string& dir, int64_t n, int64_t seed) {
  write_cifar_batch(dir, "test_batch.bin", n, seed);
  return std::make_shared<const ot::ImageDataset>(ot::load_image_dataset("cifar10", dir, "test"));
}

// ---------------------------------------------------------------- classifiers

TEST(VisionClassifier, ANewClassifierForADatasetSavesAndReloads) {
  ot::test::TempDir tmp;
  for (const char* name : {"vit", "clip_vision"}) {
    ot::VisionEncoder m = ot::load_vision_model(vision_dir(name));
    torch::manual_seed(1);
    m->set_classifier({"cat", "dog", "eel"}, 0.02);
    EXPECT_EQ(m->config().num_labels, 3);
    EXPECT_FALSE(m->has_projection()) << "CLIPForImageClassification has no projection";
    at::Tensor pixels = torch::randn({2, 3, 32, 32});
    torch::NoGradGuard ng;
    const at::Tensor logits = m->forward(pixels).logits;
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3}));
    const std::string dir = tmp.file(name);
    ot::save_model(m, dir);
    const auto cfg = nlohmann::json::parse(ot::read_text_file(dir + "/config.json"));
    EXPECT_EQ(cfg["architectures"][0], std::string(name) == "vit" ? "ViTForImageClassification" : "CLIPForImageClassification");
    EXPECT_EQ(cfg["id2label"]["2"], "eel");
    EXPECT_EQ(cfg["label2id"]["dog"], 1);
    EXPECT_FALSE(cfg.contains("projection_dim")) << name;
    ot::VisionEncoder back = ot::load_vision_model(dir);
    EXPECT_TRUE(back->forward(pixels).logits.equal(logits)) << name;
  }
}

// transformers' CLIPForImageClassification classifies the mean of the patch tokens of the
// encoder's output (no post_layernorm, class token left out); ViTForImageClassification
// the final-normed class token.
TEST(VisionClassifier, PoolingAsTransformersClassesDo) {
  torch::NoGradGuard ng;
  at::Tensor pixels = torch::randn({2, 3, 32, 32});
  ot::VisionEncoder clip = ot::load_vision_model(vision_dir("clip_vision"));
  clip->set_classifier({"a", "b"}, 0.5);
  const ot::VisionOutput o = clip->forward(pixels);
  auto cp = clip->named_parameters();
  const at::Tensor by_hand = torch::nn::functional::linear(o.last_hidden_state.slice(1, 1).mean(1),
                                                           cp["classifier.weight"], cp["classifier.bias"]);
  EXPECT_LT((o.logits - by_hand).abs().max().item<double>(), 1e-6);
  ot::VisionEncoder vit = ot::load_vision_model(vision_dir("vit"));
  const ot::VisionOutput v = vit->forward(pixels);
  auto vp = vit->named_parameters();
  const at::Tensor vit_by_hand = torch::nn::functional::linear(v.last_hidden_state.select(1, 0), vp["classifier.weight"],
                                                               vp["classifier.bias"]);
  EXPECT_LT((v.logits - vit_by_hand).abs().max().item<double>(), 1e-6);
}

// Adam's first step moves every weight by about its learning rate (m / sqrt(v) = +-1): the
// classifier's by head_lr_scale times the rest's, through the schedule's warmup too.
TEST(VisionClassifier, TheClassifierTrainsAtHeadLrScaleTimesTheRate) {
  at::Tensor block = torch::zeros({4, 4}, torch::requires_grad());
  at::Tensor cls = torch::zeros({3, 4}, torch::requires_grad());
  ot::TrainerOptions to;
  to.lr = 1e-3;
  to.max_steps = 1;
  to.schedule = "constant";
  to.clip_norm = 0;
  to.keep_best = false;
  to.head_lr_scale = 10;
  ot::Trainer trainer({{"blocks.0.fc1.weight", block}, {"classifier.weight", cls}}, to);
  struct One : ot::BatchSource {
    int64_t size() const override { return 1; }
    ot::Batch batch(const std::vector<int64_t>&) const override { return {}; }
  } data;
  trainer.fit(data, [&](const ot::Batch&, ot::Metrics&) { return block.sum() + cls.sum(); });
  EXPECT_NEAR(block.abs().mean().item<double>(), 1e-3, 1e-6);
  EXPECT_NEAR(cls.abs().mean().item<double>(), 1e-2, 1e-5);
  to.head_lr_scale = 0;
  EXPECT_THROW(ot::Trainer({{"classifier.weight", cls}}, to), ot::Error);
}

// ---------------------------------------------------------------- image batches

TEST(VisionData, TrainingBatchesAugmentPerEpochAndValidationNever) {
  ot::test::TempDir tmp;
  auto data = random_cifar(tmp.path(), 12, 3);
  ot::ImageSourceOptions so;
  so.augment = true;
  so.seed = 7;
  so.tokens_per_image = 17;
  ot::ImageClassificationSource src(data, {2, 5, 7, 9}, ot::default_image_processor_config(32), so);
  EXPECT_EQ(src.size(), 4);
  const ot::Batch plain = src.batch({0, 3});
  EXPECT_EQ(plain.pixel_values.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_EQ(plain.labels[0].item<int64_t>(), 2);  // example 2 of the dataset
  EXPECT_EQ(plain.labels[1].item<int64_t>(), 9);
  EXPECT_EQ(plain.tokens, 34);
  const ot::Batch e0 = src.training_batch({0, 3}, 0), e0b = src.training_batch({0, 3}, 0), e1 = src.training_batch({0, 3}, 1);
  EXPECT_TRUE(e0.pixel_values.equal(e0b.pixel_values)) << "the same epoch draws the same crops";
  EXPECT_FALSE(e0.pixel_values.equal(e1.pixel_values)) << "another epoch draws others";
  EXPECT_FALSE(e0.pixel_values.equal(plain.pixel_values));
  so.augment = false;
  ot::ImageClassificationSource eval_src(data, {2, 5, 7, 9}, ot::default_image_processor_config(32), so);
  EXPECT_TRUE(eval_src.training_batch({0, 3}, 4).pixel_values.equal(plain.pixel_values));
  EXPECT_THROW(src.batch({4}), ot::Error);
}

TEST(VisionData, ValidationSplitIsSeededDisjointAndComplete) {
  const ot::ImageSplit a = ot::split_image_validation(1000, 5, 42), b = ot::split_image_validation(1000, 5, 42);
  EXPECT_EQ(a.validation.size(), 50u);
  EXPECT_EQ(a.train.size(), 950u);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_NE(ot::split_image_validation(1000, 5, 43).validation, a.validation);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  for (int64_t v : a.validation) EXPECT_TRUE(all.insert(v).second);
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(a.validation.begin(), a.validation.end()));
  // Not the first 5%: image folders list their examples class by class.
  EXPECT_GT(a.validation.back(), 500);
  EXPECT_EQ(ot::split_image_validation(10, 5, 0).validation.size(), 0u);  // round(0.5) = 0, as the text split
  EXPECT_THROW(ot::split_image_validation(10, 101, 0), ot::Error);
}

// Classes kept and relabelled in the order given, then examples skipped and capped; pixels
// shared with the dataset read.
TEST(VisionData, ClassesAreSelectedRelabelledSkippedAndCapped) {
  ot::test::TempDir tmp;
  auto data = random_cifar(tmp.path(), 30, 6);  // labels i % 10
  const ot::ImageDataset s = ot::select_examples(*data, {7, 2}, 1, 3, "data.x");
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.class_names, (std::vector<std::string>{data->class_names[7], data->class_names[2]}));
  // In dataset order, classes 7 and 2 are examples 2, 7, 12, 17, 22, 27; skip 1, keep 3.
  EXPECT_EQ(s.labels[0].item<int64_t>(), 0);  // example 7 -> class 7 -> 0
  EXPECT_EQ(s.labels[1].item<int64_t>(), 1);  // example 12 -> class 2 -> 1
  EXPECT_EQ(s.labels[2].item<int64_t>(), 0);  // example 17
  EXPECT_TRUE(s.image(0).equal(data->image(7)));
  EXPECT_EQ(s.pixels.data_ptr(), data->pixels.data_ptr());
  EXPECT_EQ(ot::select_examples(*data, {}, 0, 0, "x").size(), 30);
  ot::test::expect_error([&] { ot::select_examples(*data, {10}, 0, 0, "data.x"); }, {"data.x", "class 10 is not one of"});
  ot::test::expect_error([&] { ot::select_examples(*data, {1, 1}, 0, 0, "data.x"); }, {"class 1 is listed twice"});
  ot::test::expect_error([&] { ot::select_examples(*data, {1}, 5, 0, "data.x"); }, {"no example is left"});
}

// ---------------------------------------------------------------- feature-KD distillation

TEST(VisionDistillation, FeatureKdTrainsOnlyTheEmulatorAndLowersTheLoss) {
  at::set_num_threads(1);
  ot::test::TempDir tmp;
  auto data = random_cifar(tmp.path(), 16, 9);
  for (const char* name : {"vit", "clip_vision"}) {
    ot::VisionEncoder full = ot::load_vision_model(vision_dir(name));
    ot::EmulatorOptions o;
    o.bottom = 1;
    o.top = 1;
    auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
    ot::VisionEncoder bundle = ot::build_bundle(full, layout, o);
    EXPECT_THROW(ot::Distiller(bundle.ptr(), full.ptr(), layout, ot::DistillOptions{1.0, 1.0}), ot::Error)
        << "a vision encoder has no LM loss";
    ot::Distiller d(bundle.ptr(), full.ptr(), layout, ot::DistillOptions{0.0, 1.0});
    auto params = d.trainable();
    EXPECT_EQ(params.size(), bundle->block(1).parameters().size()) << "only the emulator block trains";
    ot::ImageClassificationSource src(data, {}, ot::default_image_processor_config(32), {});
    const ot::Batch probe = src.batch({0, 1, 2, 3, 4, 5, 6, 7});
    // kd_sum: the per-example KD losses, summed.
    double by_example = 0;
    for (int64_t i = 0; i < 8; ++i) by_example += d.kd_sum(src.batch({i}));
    EXPECT_NEAR(d.kd_sum(probe), by_example, 1e-6 * by_example);  // fp32 GEMMs of other shapes
    const double before = d.kd_sum(probe);
    const at::Tensor frozen = bundle->block(0).parameters()[0].clone();
    ot::TrainerOptions to;
    to.lr = 3e-3;
    to.epochs = 15;
    to.batch_size = 8;
    to.keep_best = false;
    ot::Trainer trainer(params, to);
    trainer.fit(src, [&](const ot::Batch& b, ot::Metrics& m) { return d.loss(b, m); });
    EXPECT_LT(d.kd_sum(probe), 0.5 * before) << name;
    EXPECT_TRUE(bundle->block(0).parameters()[0].equal(frozen)) << "the adapter stays as issued";
    ot::Batch tokens;
    tokens.input_ids = torch::zeros({1, 4}, torch::kLong);
    ot::Metrics m;
    EXPECT_THROW(d.loss(tokens, m), ot::Error);
  }
}

// CKA layer selection on an encoder: the middle blocks' outputs on calibration images; the
// bundle keeps the chosen blocks; without images the strategy is refused by name.
TEST(VisionDistillation, CkaSelectsMiddleBlocksOnImages) {
  ot::test::TempDir tmp;
  random_cifar(tmp.path(), 24, 4);
  auto r = ot::test::run_cli("emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 1 --strategy cka"
                             " --calibration-images cifar10=" + tmp.path() + " --out " + tmp.file("bundle"));
  EXPECT_NE(r.exit_code, 0) << "the CIFAR batch written is a test split";
  std::filesystem::rename(tmp.file("test_batch.bin"), tmp.file("data_batch_1.bin"));
  r = ot::test::run_cli("emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 1 --strategy cka"
                        " --calibration-images cifar10=" + tmp.path() + " --out " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ot::VisionEncoder b = ot::load_vision_model(tmp.file("bundle"));
  ASSERT_EQ(b->block_origin().size(), 3u);
  EXPECT_TRUE(b->block_origin()[1] == 1 || b->block_origin()[1] == 2);
  // The same choice by hand: CKA of the two middle blocks' outputs, one cluster, its middle.
  ot::VisionEncoder full = ot::load_vision_model(vision_dir("vit"));
  auto data = std::make_shared<const ot::ImageDataset>(ot::load_image_dataset("cifar10", tmp.path(), "train"));
  ot::ImageClassificationSource src(data, {}, ot::default_image_processor_config(32), {});
  std::vector<ot::Batch> batches = {src.batch({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}),
                                    src.batch({16, 17, 18, 19, 20, 21, 22, 23})};
  EXPECT_EQ(ot::cka_select_middle_blocks(*full, 1, 1, 1, batches).kept[0] + 1, b->block_origin()[1]);
  r = ot::test::run_cli("emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 1 --strategy cka --out " +
                        tmp.file("b2"));
  EXPECT_NE(r.err.find("--strategy cka: needs calibration images"), std::string::npos) << r.err;
}

// Layer replacement on an encoder: block importance on calibration images, the harmonizer
// trained by feature KD, a bundle that reloads with it; without distillation images refused.
TEST(VisionDistillation, HarmonizersReplaceTheLessImportantBlock) {
  ot::test::TempDir tmp;
  random_cifar(tmp.path(), 24, 4);
  std::filesystem::rename(tmp.file("test_batch.bin"), tmp.file("data_batch_1.bin"));
  const std::string images = "cifar10=" + tmp.path();
  const std::string emulator = "emulator --model " + vision_dir("vit") + " --adapter 1,1 --emulator-layers 0 "
                               "--replace-layers 0.5 --calibration-images " + images;
  auto r = ot::test::run_cli(emulator + " --out " + tmp.file("b0"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("give --distill-images"), std::string::npos) << r.err;
  r = ot::test::run_cli(emulator + " --distill-images " + images + " --max-steps 2 --batch-size 8 --out " +
                        tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("bundle/config.json")));
  const auto& record = cfg["offsite"]["emulator"]["layer_replacement"];
  ASSERT_EQ(record["replaced_blocks"].size(), 1u);  // the two middle blocks are one group
  const int64_t replaced = record["replaced_blocks"][0].get<int64_t>(), kept = 3 - replaced;
  ASSERT_TRUE(replaced == 1 || replaced == 2);
  EXPECT_LE(record["importance"][std::to_string(replaced)].get<double>(),
            record["importance"][std::to_string(kept)].get<double>());
  ot::VisionEncoder b = ot::load_vision_model(tmp.file("bundle"));
  ASSERT_EQ(b->num_blocks(), 4);
  EXPECT_NE(ot::as_harmonizer(b->block(replaced)), nullptr);
  EXPECT_EQ(ot::as_harmonizer(b->block(kept)), nullptr);
}

// ---------------------------------------------------------------- the workflow

// The model owner issues a ViT bundle with a 10-class classifier and a distilled emulator;
// the data owner fine-tunes adapter + classifier on Fashion-MNIST and returns the adapter; the
// owner plugs it in. The three settings are scored on the test split; the plugged-in model
// carries exactly the returned weights, and a tampered adapter is refused.
TEST(VisionWorkflow, OwnerAndDataOwnerThroughTheCli) {
  if (!ot::dir_exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " missing (scripts/setup.sh installs it)";
  ot::test::TempDir tmp;
  const std::string fm = std::string("idx=") + kFashionMnist;
  const std::string vit = vision_dir("vit");
  auto run = [&](const std::string& args) {
    auto r = ot::test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    return r;
  };
  run("emulator --model " + vit + " --adapter 1,1 --emulator-layers 1 --num-labels 10 --distill-images " + fm +
      " --max-images 96 --eval-images " + fm + " --max-eval-images 48 --max-steps 6 --batch-size 16 --eval-every 3"
      " --record " + tmp.file("emulator.h5") + " --out " + tmp.file("bundle"));
  const auto bundle_cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("bundle/config.json")));
  EXPECT_TRUE(bundle_cfg["offsite"]["adapter"]["head"].get<bool>()) << "the new classifier is issued trainable";
  EXPECT_EQ(bundle_cfg["offsite"]["distill"]["kd_weight"], 1.0);
  EXPECT_EQ(bundle_cfg["offsite"]["distill"]["lm_weight"], 0.0);
  run("finetune --model " + tmp.file("bundle") + " --images " + fm + " --max-images 256 --train-head --head-lr-scale 10"
      " --max-steps 8 --batch-size 16 --max-eval-examples 64 --out " + tmp.file("adapter"));
  run("finetune --model " + vit + " --trainable all --new-classifier --images " + fm +
      " --max-images 256 --max-steps 8 --batch-size 16 --max-eval-examples 64 --out " + tmp.file("ft"));
  run("plugin --model " + vit + " --bundle " + tmp.file("bundle") + " --adapter " + tmp.file("adapter") + " --out " +
      tmp.file("plugged"));
  // The plugged-in model's classifier and adapter blocks are the returned tensors, bit for bit.
  const ot::StateDict returned = ot::SafetensorsFile::open(tmp.file("adapter/adapter.safetensors")).all();
  const ot::StateDict plugged = ot::SafetensorsFile::open(tmp.file("plugged/model.safetensors")).all();
  ASSERT_TRUE(returned.count("classifier.weight"));
  for (const auto& [name, t] : returned) EXPECT_TRUE(plugged.at(name).equal(t)) << name;
  for (const auto& [setting, args] : std::vector<std::pair<std::string, std::string>>{
           {"ft", "--model " + tmp.file("ft")},
           {"emulator", "--model " + tmp.file("bundle") + " --adapter " + tmp.file("adapter")},
           {"plugin", "--model " + tmp.file("plugged")}}) {
    auto r = run("eval " + args + " --images " + fm + " --batch-size 200 --output " + tmp.file(setting + ".json"));
    const auto res = nlohmann::json::parse(ot::read_text_file(tmp.file(setting + ".json")));
    const double acc = res["results"]["idx"]["acc"].get<double>();
    EXPECT_GE(acc, 0.0) << setting;
    EXPECT_LE(acc, 1.0) << setting;
    EXPECT_GT(res["results"]["idx"]["acc_stderr"].get<double>(), 0.0) << setting;
  }
  // A classifier of another shape in the returned adapter is refused by name.
  ot::StateDict bad = returned;
  bad["classifier.weight"] = torch::zeros({11, bad["classifier.weight"].size(1)});
  ot::save_safetensors(tmp.file("adapter/adapter.safetensors"), bad);
  auto r = ot::test::run_cli("plugin --model " + vit + " --bundle " + tmp.file("bundle") + " --adapter " +
                             tmp.file("adapter") + " --out " + tmp.file("plugged2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("classifier.weight"), std::string::npos) << r.err;
  EXPECT_FALSE(ot::dir_exists(tmp.file("plugged2")));
}

// ---------------------------------------------------------------- the experiment layer

// CIFAR-10 batches written under `dir`: 40 training and 20 test images, labels i % 10.
void write_cifar(const std::string& dir) {
  std::filesystem::create_directories(dir);
  write_cifar_batch(dir, "data_batch_1.bin", 40, 1);
  write_cifar_batch(dir, "test_batch.bin", 20, 2);
}

// An offsite experiment on the fixture ViT: the owner's classes 0-4, the data owner's
// `classes`; `emulator` is the [emulator] section's extra lines, `distill` the [distill] section.
std::string vision_experiment(const std::string& name, const std::string& dir, const std::string& classes,
                              const std::string& emulator, const std::string& distill) {
  const std::string cifar = ot::path_join(dir, "cifar");
  return R"(
[experiment]
name = ")" + name + R"("
recipe = "offsite"
paper_table = "table3:clip-vit-g"
work_dir = ")" + ot::path_join(dir, "work") + R"("
results_dir = ")" + ot::path_join(dir, "results") + R"("

[runtime]
threads = 1

[model]
path = ")" + vision_dir("vit") + R"("

[data.owner]
images = "cifar10"
path = ")" + cifar + R"("
split = "train"
classes = [0, 1, 2, 3, 4]

[data.kinds]
images = "cifar10"
path = ")" + cifar + R"("
split = "train"
classes = )" + classes + R"(
min_crop_scale = 0.5

[data.cifar10]
images = "cifar10"
path = ")" + cifar + R"("
split = "test"
classes = )" + classes + R"(

[emulator]
adapter = [1, 1]
layers = 1
)" + emulator + R"(

[distill]
)" + distill + R"(

[finetune]
data = "kinds"
train_head = true
max_steps = 3
batch_size = 4
head_lr_scale = 10.0

[full_finetune]
max_steps = 3
batch_size = 4

[eval]
settings = ["ft_emulator", "plugin", "ft_full"]
data = ["cifar10"]
batch_size = 8
)";
}

std::string only_run_file(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".h5" && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
  EXPECT_EQ(files.size(), 1u) << dir;
  return files.empty() ? "" : files[0];
}

std::string only_run_dir(const std::string& dir) {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(dir)) dirs.push_back(e.path().string());
  EXPECT_EQ(dirs.size(), 1u) << dir;
  return dirs.empty() ? "" : dirs[0];
}

// recipe offsite from TOML on a vision encoder: image data sources (classes selected and
// relabelled), a distilled emulator with a classifier issued for the fine-tuning classes,
// the three vision settings scored on the test images, a rerun that reproduces every value;
// then that bundle, given as emulator.bundle to a run on another label set, re-issued with a
// classifier of that set's size.
TEST(VisionExperiment, OffsiteRecipeFromTomlAndRerun) {
  ot::test::TempDir tmp;
  write_cifar(tmp.file("cifar"));
  ot::write_text_file_atomically(
      tmp.file("vision.toml"),
      vision_experiment("vision", tmp.path(), "[5, 6, 7]", "",
                        "data = \"owner\"\neval_data = \"owner\"\nmax_steps = 3\nbatch_size = 4\nlm_weight = 0.0\nkd_weight = 1.0"));
  auto r = ot::test::run_cli("run " + tmp.file("vision.toml"));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const std::string file = only_run_file(tmp.file("results/vision"));
  ot::results::RunReader run = ot::results::RunReader::open(file);
  std::set<std::string> settings;
  for (const auto& row : run.eval())
    if (row.task == "cifar10" && row.metric == "acc") {
      settings.insert(row.setting);
      EXPECT_EQ(row.n, 6);  // the test images of classes 5, 6 and 7
    }
  EXPECT_EQ(settings, (std::set<std::string>{"ft_emulator", "plugin", "ft_full"}));
  EXPECT_GT(run.curve("distill").rows(), 0u);
  const std::string bundle = ot::path_join(only_run_dir(tmp.file("work/runs/vision")), "bundle");
  EXPECT_EQ(ot::load_vision_model(bundle)->config().num_labels, 3) << "issued for the fine-tuning classes";

  auto rr = ot::test::run_cli("rerun " + file);
  ASSERT_EQ(rr.exit_code, 0) << rr.err << rr.out;
  EXPECT_NE(rr.out.find(", 0 different"), std::string::npos) << rr.out;

  // ot analyze: the run's accuracies beside Table 3's published CLIP-ViT-g CIFAR-10 row.
  auto a = ot::test::run_cli("analyze " + tmp.file("results/vision") + " --no-figures");
  ASSERT_EQ(a.exit_code, 0) << a.err << a.out;
  const std::string tables = ot::read_text_file(tmp.file("results/vision/analysis/tables.md"));
  const std::size_t published = tables.find("Published (PAPER.md Table 3, clip-vit-g)");
  ASSERT_NE(published, std::string::npos) << tables;
  for (const char* row : {"| FT | 99.1 |", "| OT Emulator | 99.1 |", "| OT Plug-in | 99.1 |"})  // 99.13, 99.11, 99.13
    EXPECT_NE(tables.find(row, published), std::string::npos) << row << "\n" << tables;

  ot::write_text_file_atomically(tmp.file("reuse.toml"),
                                 vision_experiment("reuse", tmp.path(), "[5, 6, 7, 8]", "bundle = \"" + bundle + "\"", ""));
  r = ot::test::run_cli("run " + tmp.file("reuse.toml"));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const std::string reissued = ot::path_join(only_run_dir(tmp.file("work/runs/reuse")), "bundle");
  EXPECT_EQ(ot::load_vision_model(reissued)->config().num_labels, 4);
  EXPECT_EQ(ot::load_vision_model(bundle)->config().num_labels, 3) << "the distilled bundle itself is untouched";
}

}  // namespace
