// tests/unit/test_layer_replacement.cpp: ScaleOT's layer replacement (model/harmonizer.h,
// offsite/layer_replacement.h). A harmonizer computes h + up(gelu(down(LayerNorm(h)))) as
// written out here and starts as the identity; block importance equals 1 - the mean cosine
// of each block's input and output over real tokens, worked out from the model's hidden
// states; the blocks chosen per group by hand; distillation trains a harmonizer toward the
// block it replaces; through the CLI on stories260K a bundle stores harmonizers under the
// replaced blocks' names, records their ranks and the importance, reloads to the same
// logits, fine-tunes and plugs in, and the plain export and a tampered rank are refused.
// The model FLOPs of a bundle count what its blocks store: low-rank factors, pruned MLP
// widths, harmonizers without attention, each worked out by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "checkpoint/safetensors.h"
#include "model/flops.h"
#include "model/harmonizer.h"
#include "model/load.h"
#include "offsite/channel_pruning.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "offsite/layer_replacement.h"
#include "offsite/rank_compression.h"
#include "results/run_file.h"
#include "test_support.h"
#include "util/fs.h"

namespace {

using ot::test::expect_error;
using ot::test::fixture_dir;

TEST(Flops, CompressedBundlesCountWhatTheyStore) {
  // OPT fixture: 4 blocks, C 64, ffn 256, vocabulary 1000. A 1-2-1 bundle keeps every block,
  // so the dense bundle costs what the model does: per block q, k, v, out (64 x 64) and fc1,
  // fc2 (64 x 256): 2 * (4 * 4096 + 2 * 16384) = 98304, attention 4 * T * C = 4096; head 2 * C * V.
  ot::DecoderLM full = ot::load_model(fixture_dir("opt"));
  const int64_t T = 16;
  const double dense = 98304.0 + 4096.0, head = 128000.0;
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 2;
  const ot::OffsiteLayout layout = ot::make_layout(4, o, {0, 1});
  auto bundle = [&] { return ot::build_bundle(full, layout, o); };
  ASSERT_DOUBLE_EQ(ot::forward_flops_per_token(full, T), 4 * dense + head);
  {
    // Rank 8: each attention projection stores (8 x 64) + (64 x 8) = 1024 weights, not 4096.
    ot::DecoderLM b = bundle();
    ot::compress_emulator_ranks(*b, layout, 8);
    const double low_rank = 2.0 * (4 * 1024 + 2 * 16384) + 4096.0;
    EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(b, T), 2 * dense + 2 * low_rank + head);
  }
  {
    // Half the MLP channels: fc1 and fc2 of 128 channels, 2 * (2 * 64 * 128) = 32768.
    ot::DecoderLM b = bundle();
    ot::EmulatorOptions prune = o;
    prune.prune_channels = 0.5;
    prune.channel_score = "magnitude";
    ot::prune_emulator_channels(*b, layout, prune, {});
    const double pruned = 2.0 * 4 * 4096 + 32768.0 + 4096.0;
    EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(b, T), 2 * dense + 2 * pruned + head);
  }
  {
    // A rank-4 harmonizer in place of block 1: down (4 x 64) and up (64 x 4), no attention.
    ot::DecoderLM b = bundle();
    ot::replace_with_harmonizers(*b, {1}, 4, 7);
    EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(b, T), 3 * dense + 2.0 * (256 + 256) + head);
  }
}

TEST(Harmonizer, ComputesItsFormulaAndStartsAsTheIdentity) {
  ot::DecoderLM m = ot::load_model(fixture_dir("opt"));
  const ot::ModelConfig& cfg = m->config();
  auto h = ot::make_harmonizer(cfg, 3);
  h->init();
  const at::Tensor x = torch::randn({2, 5, cfg.hidden_size});
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(h->forward(x, ot::AttentionContext{}, nullptr), x)) << "up starts at zero";
  auto params = h->named_parameters(true);
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"harmonizer.norm.weight", "harmonizer.norm.bias", "harmonizer.down.weight",
                                             "harmonizer.down.bias", "harmonizer.up.weight", "harmonizer.up.bias"}));
  for (auto& p : params) p.value().normal_();
  auto P = [&](const std::string& n) { return params[n].to(torch::kDouble); };
  const at::Tensor xd = x.to(torch::kDouble);
  const at::Tensor mean = xd.mean(-1, true), var = (xd - mean).pow(2).mean(-1, true);
  const at::Tensor ln = (xd - mean) / torch::sqrt(var + 1e-5) * P("harmonizer.norm.weight") + P("harmonizer.norm.bias");
  const at::Tensor d = torch::matmul(ln, P("harmonizer.down.weight").t()) + P("harmonizer.down.bias");
  const at::Tensor g = 0.5 * d * (1 + torch::erf(d / std::sqrt(2.0)));
  const at::Tensor want = xd + torch::matmul(g, P("harmonizer.up.weight").t()) + P("harmonizer.up.bias");
  EXPECT_LE((h->forward(x, ot::AttentionContext{}, nullptr).to(torch::kDouble) - want).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(ot::default_harmonizer_rank(cfg), std::max<int64_t>(1, std::min<int64_t>(64, cfg.hidden_size / 4)));
  EXPECT_THROW(ot::make_harmonizer(cfg, cfg.hidden_size + 1), ot::Error);
}

TEST(LayerReplacement, ParsesRatiosAndBlockLists) {
  EXPECT_FALSE(ot::parse_replace_layers("", "--replace-layers").enabled());
  const ot::ReplaceSpec r = ot::parse_replace_layers("0.5", "--replace-layers");
  EXPECT_DOUBLE_EQ(r.ratio, 0.5);
  EXPECT_TRUE(r.needs_importance());
  EXPECT_EQ(ot::parse_replace_layers("5,7", "--replace-layers").blocks, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(ot::parse_replace_layers("6", "--replace-layers").blocks, (std::vector<int64_t>{6}));
  EXPECT_FALSE(ot::parse_replace_layers("6", "--replace-layers").needs_importance());
  for (const char* bad : {"1.0", "-0.5", "half", "5,,7", "7,5", "5,5", "0.5x", ","})
    expect_error([&] { ot::parse_replace_layers(bad, "--replace-layers"); }, {"--replace-layers"});
}

TEST(LayerReplacement, ImportanceIsOneMinusTheMeanCosineOverRealTokens) {
  ot::DecoderLM m = ot::load_model(fixture_dir("opt"));
  const int64_t n = m->num_blocks();
  ASSERT_GE(n, 4);
  torch::manual_seed(3);
  ot::Batch b;
  b.input_ids = torch::randint(3, 100, {2, 7}, torch::kLong);
  b.attention_mask = torch::ones({2, 7}, torch::kLong);
  b.attention_mask.index_put_({1, torch::indexing::Slice(5, 7)}, 0);  // two padding tokens (right-padded)
  const std::vector<double> got = ot::block_importance(*m, 1, 1, {b});
  ASSERT_EQ(static_cast<int64_t>(got.size()), n - 2);
  torch::NoGradGuard ng;
  ot::ForwardOptions fo;
  fo.hidden_states = true;
  const ot::ForwardOutput out = m->forward(b.input_ids, b.attention_mask, {}, fo);
  for (int64_t i = 1; i < n - 1; ++i) {
    double sum = 0;
    int64_t count = 0;
    for (int64_t row = 0; row < 2; ++row)
      for (int64_t t = 0; t < (row == 0 ? 7 : 5); ++t) {
        const at::Tensor a = out.block_outputs[static_cast<size_t>(i - 1)][row][t].to(torch::kDouble);
        const at::Tensor c = out.block_outputs[static_cast<size_t>(i)][row][t].to(torch::kDouble);
        sum += (a.dot(c) / (a.norm() * c.norm())).item<double>();
        ++count;
      }
    EXPECT_NEAR(got[static_cast<size_t>(i - 1)], 1.0 - sum / double(count), 1e-6) << "block " << i;
  }
  expect_error([&] { ot::block_importance(*m, 1, 1, {}); }, {"--replace-layers", "calibration"});
}

TEST(LayerReplacement, ChoosesTheLeastImportantOfEveryGroup) {
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  // 10 blocks, middle 1..8, all kept.
  const ot::OffsiteLayout all = ot::make_layout(10, o, {0, 1, 2, 3, 4, 5, 6, 7});
  const std::vector<double> imp = {0.5, 0.1, 0.2, 0.2, 0.9, 0.3, 0.4, 0.05};  // blocks 1..8
  ot::ReplaceSpec half;
  half.ratio = 0.5;
  // Pairs (1,2) (3,4) (5,6) (7,8): the lower score of each; a tie keeps the lower index.
  EXPECT_EQ(ot::blocks_to_replace(all, half, 2, imp), (std::vector<int64_t>{2, 3, 6, 8}));
  // Groups (1,2,3) (4,5,6) (7,8): int(0.5 * 3 + 0.5) = 2 of each triple, then 1 of the pair.
  EXPECT_EQ(ot::blocks_to_replace(all, half, 3, imp), (std::vector<int64_t>{2, 3, 4, 6, 8}));
  ot::ReplaceSpec quarter;
  quarter.ratio = 0.25;  // of 4: one per group
  EXPECT_EQ(ot::blocks_to_replace(all, quarter, 4, imp), (std::vector<int64_t>{2, 8}));
  // A dropped layout: only kept blocks (2, 4, 6 of the original) are candidates.
  const ot::OffsiteLayout kept = ot::make_layout(10, o, {1, 3, 5});
  EXPECT_EQ(ot::blocks_to_replace(kept, half, 2, imp), (std::vector<int64_t>{2, 6}));
  ot::ReplaceSpec list;
  list.blocks = {4};
  EXPECT_EQ(ot::blocks_to_replace(kept, list, 2, {}), (std::vector<int64_t>{4}));
  list.blocks = {3};
  expect_error([&] { ot::blocks_to_replace(kept, list, 2, {}); }, {"block 3 is not an emulator block", "2,4,6"});
  o.repeat = true;
  const ot::OffsiteLayout repeated = ot::make_layout(10, o, {1, 3, 5});
  expect_error([&] { ot::blocks_to_replace(repeated, half, 2, imp); }, {"--repeat"});
}

// Layer-wise distillation trains a harmonizer toward the block it replaces: on a fixed batch,
// its KD toward that block's output falls well below where the identity start has it.
TEST(LayerReplacement, DistillationTrainsTheHarmonizerTowardItsBlock) {
  ot::DecoderLM full = ot::load_model(fixture_dir("opt"));
  const int64_t n = full->num_blocks();
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  std::vector<int64_t> middle;
  for (int64_t i = 0; i < n - 2; ++i) middle.push_back(i);
  const ot::OffsiteLayout layout = ot::make_layout(n, o, middle);
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  const auto ranks = ot::replace_with_harmonizers(*bundle, {2}, 8, 7);
  std::vector<int64_t> want(static_cast<size_t>(n), 0);
  want[2] = 8;
  EXPECT_EQ(ranks, want);
  ASSERT_NE(ot::as_harmonizer(bundle->block(2)), nullptr);
  ot::DistillOptions d_opts;
  d_opts.layerwise = true;
  d_opts.lm_weight = 0.0;
  d_opts.kd_weight = 1.0;
  ot::Distiller d(bundle.ptr(), full.ptr(), layout, d_opts);
  EXPECT_EQ(d.layerwise_targets()[1], 2) << "the harmonizer matches the block it replaces";
  std::vector<at::Tensor> params;
  for (auto& [name, p] : d.trainable())
    if (name.find(".harmonizer.") != std::string::npos) params.push_back(p);  // the harmonizer alone
  ASSERT_EQ(params.size(), 6u);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
  torch::manual_seed(5);
  ot::Batch b;
  b.input_ids = torch::randint(3, 100, {2, 8}, torch::kLong);
  b.labels = b.input_ids.clone();
  b.tokens = 16;
  bundle->eval();  // no dropout: the same loss on the same batch
  ot::Metrics extra;
  const double start = d.loss(b, extra).item<double>();
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    d.loss(b, extra).backward();
    opt.step();
  }
  const double end = d.loss(b, extra).item<double>();
  EXPECT_LT(end, 0.5 * start) << "start " << start << ", end " << end;
}

TEST(LayerReplacement, BundlesThroughTheCli) {
  ot::test::TempDir tmp;
  auto r = ot::test::convert_stories260k(tmp.file("full"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ot::test::write_tinystories_head(tmp.file("text.txt"), 20000);
  const std::string emulator = "emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 0 ";
  const std::string data = " --calibration " + tmp.file("text.txt") + " --distill " + tmp.file("text.txt") +
                           " --block-size 32 --batch-size 4 --max-steps 3 ";
  r = ot::test::run_cli(emulator + "--replace-layers 0.5 --svd 4" + data + "--layerwise-kd --record " +
                        tmp.file("run.h5") + " --out " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A command-line run records the emulator options under their TOML names.
  const auto run = ot::results::RunReader::open(tmp.file("run.h5"));
  EXPECT_EQ(run.string_attribute("emulator.replace_layers"), "0.5");
  EXPECT_EQ(run.int_attribute("emulator.replace_group"), 2);
  EXPECT_DOUBLE_EQ(run.double_attribute("emulator.svd"), 4.0);
  EXPECT_EQ(run.string_attribute("emulator.adapter"), "1,1");
  EXPECT_EQ(run.int_attribute("emulator.layers"), 3);
  const auto cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("bundle/config.json")));
  const auto& section = cfg["offsite"];
  const int64_t rank = ot::default_harmonizer_rank(ot::load_model(tmp.file("full"))->config());
  // stories260K: 5 blocks, middle 1..3 in groups (1,2) (3): one of each replaced.
  const auto& record = section["emulator"]["layer_replacement"];
  const std::vector<int64_t> replaced = record["replaced_blocks"].get<std::vector<int64_t>>();
  ASSERT_EQ(replaced.size(), 2u);
  EXPECT_EQ(replaced[1], 3);
  EXPECT_TRUE(replaced[0] == 1 || replaced[0] == 2);
  const auto importance = record["importance"];
  ASSERT_EQ(importance.size(), 3u);
  const int64_t other = replaced[0] == 1 ? 2 : 1;
  EXPECT_LE(importance[std::to_string(replaced[0])].get<double>(), importance[std::to_string(other)].get<double>());
  std::vector<int64_t> want_ranks = {0, 0, 0, 0, 0};
  for (int64_t b : replaced) want_ranks[static_cast<size_t>(b)] = rank;
  EXPECT_EQ(section["harmonizer_ranks"].get<std::vector<int64_t>>(), want_ranks);
  const std::string h = "model.layers." + std::to_string(replaced[0]) + ".";
  const ot::StateDict stored = ot::SafetensorsFile::open(tmp.file("bundle/model.safetensors")).all();
  EXPECT_EQ(stored.at(h + "harmonizer.down.weight").sizes(), (std::vector<int64_t>{rank, 64}));
  EXPECT_FALSE(stored.count(h + "self_attn.q_proj.weight"));
  EXPECT_GT(stored.at(h + "harmonizer.up.weight").abs().max().item<double>(), 0.0) << "distillation trained it";
  // The kept block is rank-compressed; the harmonizers are not (they have no attention).
  EXPECT_TRUE(stored.count("model.layers." + std::to_string(other) + ".self_attn.q_proj.svd_a"));
  EXPECT_TRUE(section["svd_ranks"][replaced[0]].empty());

  // It reloads as it was built, fine-tunes and plugs in.
  ot::DecoderLM bundle = ot::load_model(tmp.file("bundle"));
  ASSERT_NE(ot::as_harmonizer(bundle->block(replaced[0])), nullptr);
  r = ot::test::finetune_and_plug_in(tmp.file("full"), tmp.file("bundle"), tmp.file("text.txt"), tmp.file("adapter"),
                                     tmp.file("plugged"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = ot::test::run_cli("inspect " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("harmonizer of rank " + std::to_string(rank)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attention ranks self_attn.k_proj 4"), std::string::npos) << r.out;

  // Refused: the plain export, a tampered rank, no distillation, a block the emulator lacks.
  r = ot::test::run_cli("convert plain-hf --model " + tmp.file("bundle") + " --out " + tmp.file("plain"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is a harmonizer"), std::string::npos) << r.err;
  auto tampered = cfg;
  tampered["offsite"]["harmonizer_ranks"][replaced[0]] = rank + 1;
  ot::test::write_file(tmp.file("bundle/config.json"), tampered.dump());
  expect_error([&] { ot::load_model(tmp.file("bundle")); }, {"harmonizer.down.weight"});
  r = ot::test::run_cli(emulator + "--replace-layers 2 --out " + tmp.file("b2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("trained by distillation; give --distill"), std::string::npos) << r.err;
  r = ot::test::run_cli("emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 2 --replace-layers 2" +
                        data + "--out " + tmp.file("b3"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("block 2 is not an emulator block"), std::string::npos) << r.err;
}

}  // namespace
