// tests/unit/test_channel_pruning.cpp: structured pruning of the emulator's MLP channels
// (model/mlp_channels.h, offsite/channel_pruning.h). For every family a pruned block computes
// what the original computes with the removed channels' contributions taken out, and its
// projections have the removed rows and columns gone; scores and the channels kept by hand;
// the GradOT score against its formula from gradients taken by backward(); bundles with
// pruned channels through the CLI: written, reloaded exactly, fine-tuned and plugged in.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "checkpoint/safetensors.h"
#include "model/lm_loss.h"
#include "model/load.h"
#include "model/mlp_channels.h"
#include "model/vision_encoder.h"
#include "offsite/channel_pruning.h"
#include "offsite/emulator.h"
#include "test_support.h"
#include "util/fs.h"

namespace {

using ot::test::fixture_dir;

std::string vision_dir(const std::string& name) { return ot::test::shared_path("fixtures/hf-vision/" + name); }

// Block 1 of each fixture model with every other channel removed equals the original block
// with those channels' columns of the contracting projection set to zero.
void expect_pruned_block_exact(ot::BlockModelImpl& model, const at::Tensor& h, const ot::AttentionContext& ctx,
                               const std::string& name) {
  torch::NoGradGuard ng;
  const ot::ModelConfig& cfg = model.config();
  const int64_t F = ot::mlp_width(model.block(1), cfg);
  ASSERT_EQ(F, cfg.intermediate_size) << name;
  std::vector<int64_t> keep, drop;
  for (int64_t i = 0; i < F; ++i) (i % 2 ? drop : keep).push_back(i);
  auto pruned = ot::copy_block(cfg, model.block(1), 1);
  ot::keep_mlp_channels(*pruned, cfg, keep);
  EXPECT_EQ(ot::mlp_width(*pruned, cfg), static_cast<int64_t>(keep.size())) << name;
  auto reference = ot::copy_block(cfg, model.block(1), 1);
  const auto ps = ot::mlp_projections(*reference, cfg);
  const auto& down = ps.back().projection;
  down->weight.index_fill_(1 - down->output_dim(), torch::tensor(drop), 0.0);
  const at::Tensor want = reference->forward(h, ctx, nullptr), got = pruned->forward(h, ctx, nullptr);
  EXPECT_LE((want - got).abs().max().item<double>(), 1e-5) << name;
  // The kept rows (columns) are the original ones, the others gone.
  const auto orig = ot::mlp_projections(model.block(1), cfg), after = ot::mlp_projections(*pruned, cfg);
  for (size_t k = 0; k < orig.size(); ++k) {
    const auto& o = orig[k].projection;
    const auto& a = after[k].projection;
    const int64_t dim = orig[k].expands ? o->output_dim() : 1 - o->output_dim();
    EXPECT_EQ(a->weight.size(dim), static_cast<int64_t>(keep.size()) * orig[k].groups) << name;
    EXPECT_TRUE(a->weight.narrow(dim, 0, 1).equal(o->weight.narrow(dim, 0, 1))) << name;
    EXPECT_TRUE(a->weight.narrow(dim, 1, 1).equal(o->weight.narrow(dim, 2, 1))) << name << ": channel 2 kept second";
  }
}

TEST(ChannelPruning, APrunedBlockIsTheOriginalWithoutThoseChannels) {
  torch::manual_seed(3);
  for (const char* arch : {"opt", "gpt2", "bloom", "llama"}) {
    ot::DecoderLM m = ot::load_model(fixture_dir(arch));
    const at::Tensor ids = torch::randint(3, 100, {2, 7}, torch::kLong);
    const auto ctx = m->make_context(ids, at::Tensor(), at::Tensor(), 0);
    at::Tensor h;
    {
      torch::NoGradGuard ng;
      h = m->embed(ids, ctx);
    }
    expect_pruned_block_exact(*m, h, ctx, arch);
  }
  for (const char* name : {"vit", "clip_vision"}) {
    ot::VisionEncoder m = ot::load_vision_model(vision_dir(name));
    at::Tensor h;
    {
      torch::NoGradGuard ng;
      h = m->embed(torch::randn({2, 3, m->config().image_size, m->config().image_size}));
    }
    expect_pruned_block_exact(*m, h, m->make_context(), name);
  }
}

TEST(ChannelPruning, KeptChannelsAndScoresByHand) {
  // int(0.5 * 4) = 2 removed: the two highest, 5 (index 3) and 3 (index 0), in index order.
  EXPECT_EQ(ot::channels_to_keep(torch::tensor({3.0, 1.0, 2.0, 5.0}), 0.5), (std::vector<int64_t>{0, 3}));
  // Ties keep the lower index; at least one channel stays.
  EXPECT_EQ(ot::channels_to_keep(torch::tensor({1.0, 1.0, 1.0}), 0.34), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ot::channels_to_keep(torch::tensor({1.0, 2.0}), 0.99), (std::vector<int64_t>{1}));
  EXPECT_THROW(ot::channels_to_keep(torch::tensor({1.0}), 1.0), ot::Error);
  // Magnitude per channel: a 3-channel OPT-style fc1 (3 x 2) + bias and fc2 (2 x 3).
  ot::nn::Linear fc1(ot::nn::LinearOptions(2, 3)), fc2(ot::nn::LinearOptions(3, 2));
  fc1->weight.data().copy_(torch::tensor({{1.0f, 2.0f}, {0.0f, 1.0f}, {3.0f, 0.0f}}));
  fc1->bias.data().copy_(torch::tensor({1.0f, 0.0f, 0.0f}));
  fc2->weight.data().copy_(torch::tensor({{1.0f, 0.0f, 2.0f}, {1.0f, 1.0f, 0.0f}}));
  ot::MlpProjection in{fc1.ptr(), true, 1}, out{fc2.ptr(), false, 1};
  const at::Tensor s = ot::per_channel_sum(in, fc1->weight.pow(2), fc1->bias.pow(2)) +
                       ot::per_channel_sum(out, fc2->weight.pow(2), at::Tensor());
  // channel 0: 1 + 4 + 1 (bias) + 1 + 1 = 8; channel 1: 0 + 1 + 0 + 0 + 1 = 2; channel 2: 9 + 4 = 13.
  EXPECT_TRUE(s.equal(torch::tensor({8.0, 2.0, 13.0}, torch::kDouble))) << s;
  // Phi-3's fused gate_up: channel i is rows i and F + i.
  ot::nn::Linear fused(ot::nn::LinearOptions(1, 4));
  fused->weight.data().copy_(torch::tensor({{1.0f}, {2.0f}, {3.0f}, {4.0f}}));
  ot::MlpProjection gate_up{fused.ptr(), true, 2};
  EXPECT_TRUE(ot::per_channel_sum(gate_up, fused->weight, fused->bias * 0).equal(torch::tensor({4.0, 6.0}, torch::kDouble)));
}

// GradOT's score from gradients taken by backward() on each calibration batch:
// 1/2 sum Fisher w^2 + lambda * sum mean(g) w, Fisher = mean(g^2).
TEST(ChannelPruning, GradotScoreIsItsFormula) {
  ot::DecoderLM full = ot::load_model(fixture_dir("llama"));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  torch::manual_seed(5);
  std::vector<ot::Batch> calibration(3);
  for (auto& b : calibration) {
    b.input_ids = torch::randint(3, 1000, {2, 9}, torch::kLong);
    b.labels = b.input_ids.clone();
  }
  o.channel_score = "gradot";
  o.gradot_lambda = 0.7;
  const auto scores = ot::emulator_channel_scores(*bundle, layout, o, calibration);
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0].first, 1);
  // By hand: each batch's gradient of gate, up, down.
  auto ps = ot::mlp_projections(bundle->block(1), bundle->config());
  std::vector<at::Tensor> g(3), g2(3);
  for (auto& b : calibration) {
    for (auto& p : bundle->parameters()) p.mutable_grad() = at::Tensor();
    for (auto& p : ps) p.projection->weight.requires_grad_(true);
    ot::causal_lm_loss(bundle->forward(b.input_ids).logits, b.labels).backward();
    for (size_t k = 0; k < 3; ++k) {
      const at::Tensor gk = ps[k].projection->weight.grad().to(torch::kDouble);
      g[k] = g[k].defined() ? g[k] + gk : gk.clone();
      g2[k] = g2[k].defined() ? g2[k] + gk.pow(2) : gk.pow(2);
    }
  }
  at::Tensor want = torch::zeros({bundle->config().intermediate_size}, torch::kDouble);
  for (size_t k = 0; k < 3; ++k) {
    const at::Tensor w = ps[k].projection->weight.detach().to(torch::kDouble);
    const at::Tensor v = 0.5 * (g2[k] / 3) * w.pow(2) + 0.7 * (g[k] / 3) * w;
    want += ps[k].expands ? v.sum(1) : v.sum(0);
  }
  EXPECT_LE((scores[0].second - want).abs().max().item<double>(), 1e-9 * want.abs().max().item<double>());
  // Without calibration batches, or on an encoder, gradot says what it needs.
  EXPECT_THROW(ot::emulator_channel_scores(*bundle, layout, o, {}), ot::Error);
}

// Through the CLI on stories260K: a bundle with half the emulator's channels pruned records
// its widths, reloads to the same outputs, fine-tunes and plugs back in; gradot takes the
// calibration text.
TEST(ChannelPruning, BundlesWithPrunedChannelsThroughTheCli) {
  ot::test::TempDir tmp;
  auto r = ot::test::convert_stories260k(tmp.file("full"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ot::test::write_tinystories_head(tmp.file("text.txt"), 20000);
  r = ot::test::run_cli("emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 2 --prune-channels 0.5"
                        " --out " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("bundle/config.json")));
  const int64_t F = cfg["intermediate_size"].get<int64_t>();
  EXPECT_EQ(cfg["offsite"]["mlp_channels"], nlohmann::json({F, F - F / 2, F - F / 2, F}));
  EXPECT_EQ(cfg["offsite"]["emulator"]["channel_pruning"]["score"], "magnitude");
  const ot::StateDict stored = ot::SafetensorsFile::open(tmp.file("bundle/model.safetensors")).all();
  EXPECT_EQ(stored.at("model.layers.1.mlp.down_proj.weight").size(1), F - F / 2);
  EXPECT_EQ(stored.at("model.layers.0.mlp.down_proj.weight").size(1), F);

  r = ot::test::finetune_and_plug_in(tmp.file("full"), tmp.file("bundle"), tmp.file("text.txt"), tmp.file("adapter"),
                                     tmp.file("plugged"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = ot::test::run_cli("inspect " + tmp.file("bundle"));
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = ot::test::run_cli("emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 2 --prune-channels 0.25"
                        " --channel-score gradot --out " + tmp.file("g"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--calibration"), std::string::npos) << r.err;
  r = ot::test::run_cli("emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 2 --prune-channels 0.25"
                        " --channel-score gradot --gradot-lambda 0.5 --calibration " + tmp.file("text.txt") +
                        " --block-size 32 --out " + tmp.file("g"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto g = nlohmann::json::parse(ot::read_text_file(tmp.file("g/config.json")));
  EXPECT_EQ(g["offsite"]["mlp_channels"][1], F - static_cast<int64_t>(0.25 * double(F)));
  EXPECT_EQ(g["offsite"]["emulator"]["channel_pruning"]["gradot_lambda"], 0.5);

  // A bundle whose stored widths disagree with its tensors is refused by name.
  auto bad = cfg;
  bad["offsite"]["mlp_channels"][1] = F;
  ot::write_text_file_atomically(tmp.file("bundle/config.json"), bad.dump());
  try {
    ot::load_model(tmp.file("bundle"));
    ADD_FAILURE() << "loaded";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp"), std::string::npos) << e.what();
  }
}

// Reloading a pruned bundle gives the in-memory one's outputs exactly.
TEST(ChannelPruning, APrunedBundleSavesAndReloadsExactly) {
  ot::DecoderLM full = ot::load_model(fixture_dir("opt"));
  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.prune_channels = 0.3;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 2, "uniform"));
  ot::DecoderLM bundle = ot::build_bundle(full, layout, o);
  const auto widths = ot::prune_emulator_channels(*bundle, layout, o, {});
  const int64_t F = full->config().intermediate_size;
  EXPECT_EQ(widths, (std::vector<int64_t>{F, F - int64_t(0.3 * F), F - int64_t(0.3 * F), F}));
  auto section = bundle->config().raw["offsite"];
  section["mlp_channels"] = widths;
  bundle->set_config_entry("offsite", section);
  ot::test::TempDir tmp;
  ot::save_model(bundle, tmp.file("b"));
  ot::DecoderLM back = ot::load_model(tmp.file("b"));
  torch::NoGradGuard ng;
  const at::Tensor ids = torch::randint(3, 100, {2, 9}, torch::kLong);
  EXPECT_TRUE(back->forward(ids).logits.equal(bundle->forward(ids).logits));
}

}  // namespace
