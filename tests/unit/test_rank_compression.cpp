// tests/unit/test_rank_compression.cpp: rank compression of the emulator's attention
// projections (model/low_rank.h, offsite/rank_compression.h) and the plain export. The rank
// chosen for an energy fraction by hand; the factors are W's best rank-r approximation (its
// squared error is the sum of the dropped squared singular values); every family's attention
// projections factor and, at full rank, compute what they did; through the CLI on
// stories260K a bundle stores the factors (and is smaller), fine-tunes and plugs in, and
// `ot convert plain-hf` gives dense weights that compute the same logits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/safetensors.h"
#include "model/load.h"
#include "model/low_rank.h"
#include "model/mlp_channels.h"
#include "model/vision_encoder.h"
#include "offsite/emulator.h"
#include "offsite/rank_compression.h"
#include "test_support.h"
#include "util/fs.h"

namespace {

using ot::test::fixture_dir;

TEST(RankCompression, RankForAnEnergyFractionByHand) {
  const at::Tensor s = torch::tensor({3.0, 2.0, 1.0});  // energies 9, 4, 1 of 14
  EXPECT_EQ(ot::rank_for(s, 0.6), 1);                   // 9/14 = 0.64
  EXPECT_EQ(ot::rank_for(s, 0.9), 2);                   // 13/14 = 0.93
  EXPECT_EQ(ot::rank_for(s, 0.99), 3);
  EXPECT_EQ(ot::rank_for(s, 1.0), 1);                   // a rank
  EXPECT_EQ(ot::rank_for(s, 5.0), 3);                   // capped
  EXPECT_THROW(ot::rank_for(s, 2.5), ot::Error);
  EXPECT_THROW(ot::rank_for(s, 0.0), ot::Error);
}

TEST(RankCompression, FactorsAreTheBestRankRApproximation) {
  torch::manual_seed(2);
  for (bool conv1d : {false, true}) {
    std::shared_ptr<ot::nn::ProjectionBase> p;
    if (conv1d) p = ot::nn::Conv1D(12, 9).ptr();
    else p = ot::nn::Linear(ot::nn::LinearOptions(12, 9)).ptr();
    {
      torch::NoGradGuard ng;
      p->weight.normal_();
      p->bias.normal_();
    }
    const at::Tensor w = (conv1d ? p->weight.t() : p->weight).to(torch::kDouble).clone();  // (out, in)
    const at::Tensor b = p->bias.clone();
    const at::Tensor s = p->singular_values();
    p->factorize(4);
    ASSERT_TRUE(p->is_low_rank());
    EXPECT_EQ(p->rank(), 4);
    EXPECT_EQ(p->svd_a.sizes(), (std::vector<int64_t>{4, 12}));
    EXPECT_EQ(p->svd_b.sizes(), (std::vector<int64_t>{9, 4}));
    EXPECT_EQ(p->named_parameters().find("weight"), nullptr);
    const at::Tensor approx = torch::mm(p->svd_b, p->svd_a).to(torch::kDouble);
    // Eckart-Young: ||W - W_4||_F^2 = s_5^2 + ... + s_9^2.
    const double err = (w - approx).pow(2).sum().item<double>();
    EXPECT_NEAR(err, s.narrow(0, 4, 5).pow(2).sum().item<double>(), 1e-4 * err);
    const at::Tensor x = torch::randn({3, 12});
    torch::NoGradGuard ng;
    const at::Tensor want = torch::matmul(x.to(torch::kDouble), approx.t()) + b.to(torch::kDouble);
    const at::Tensor got = conv1d ? std::dynamic_pointer_cast<ot::nn::Conv1DImpl>(p)->forward(x)
                                  : std::dynamic_pointer_cast<ot::nn::LinearImpl>(p)->forward(x);
    EXPECT_LE((got.to(torch::kDouble) - want).abs().max().item<double>(), 1e-5);
    p->densify();
    EXPECT_FALSE(p->is_low_rank());
    EXPECT_LE(((conv1d ? p->weight.t() : p->weight).to(torch::kDouble) - approx).abs().max().item<double>(), 1e-6);
  }
}

// In every family the attention projections are every projection but the MLP's; at full
// rank the factorized block computes what the dense one did.
TEST(RankCompression, EveryFamilysAttentionProjectionsFactorExactlyAtFullRank) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"opt", {"self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj"}},
      {"gpt2", {"attn.c_attn", "attn.c_proj"}},
      {"bloom", {"self_attention.query_key_value", "self_attention.dense"}},
      {"llama", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}}};
  torch::manual_seed(4);
  for (const auto& [arch, names] : expected) {
    ot::DecoderLM m = ot::load_model(fixture_dir(arch));
    const ot::ModelConfig& cfg = m->config();
    auto block = ot::copy_block(cfg, m->block(1), 1);
    std::set<std::string> got, want(names.begin(), names.end());
    for (const auto& [name, p] : ot::attention_projections(*block, cfg)) got.insert(name);
    EXPECT_EQ(got, want) << arch;
    const at::Tensor ids = torch::randint(3, 100, {2, 6}, torch::kLong);
    const auto ctx = m->make_context(ids, at::Tensor(), at::Tensor(), 0);
    torch::NoGradGuard ng;
    const at::Tensor h = m->embed(ids, ctx), before = block->forward(h, ctx, nullptr);
    for (const auto& [name, p] : ot::attention_projections(*block, cfg)) p->factorize(1 << 20);
    EXPECT_LE((block->forward(h, ctx, nullptr) - before).abs().max().item<double>(), 1e-4) << arch;
  }
}

TEST(RankCompression, BundlesStoreFactorsAndExportPlain) {
  ot::test::TempDir tmp;
  auto r = ot::test::convert_stories260k(tmp.file("full"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ot::test::write_tinystories_head(tmp.file("text.txt"), 20000);
  const std::string emulator = "emulator --model " + tmp.file("full") + " --adapter 1,1 --emulator-layers 2 ";
  ASSERT_EQ(ot::test::run_cli(emulator + "--out " + tmp.file("dense")).exit_code, 0);
  r = ot::test::run_cli(emulator + "--svd 8 --out " + tmp.file("bundle"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("bundle/config.json")));
  const auto& ranks = cfg["offsite"]["svd_ranks"];
  ASSERT_EQ(ranks.size(), 4u);
  EXPECT_TRUE(ranks[0].empty());
  EXPECT_TRUE(ranks[3].empty());
  EXPECT_EQ(ranks[1], nlohmann::json({{"self_attn.k_proj", 8}, {"self_attn.o_proj", 8}, {"self_attn.q_proj", 8},
                                      {"self_attn.v_proj", 8}}));
  const ot::StateDict stored = ot::SafetensorsFile::open(tmp.file("bundle/model.safetensors")).all();
  EXPECT_EQ(stored.at("model.layers.1.self_attn.q_proj.svd_a").size(0), 8);
  EXPECT_FALSE(stored.count("model.layers.1.self_attn.q_proj.weight"));
  EXPECT_TRUE(stored.count("model.layers.0.self_attn.q_proj.weight")) << "adapter blocks stay dense";
  EXPECT_LT(std::filesystem::file_size(tmp.file("bundle/model.safetensors")),
            std::filesystem::file_size(tmp.file("dense/model.safetensors")));

  // The data owner fine-tunes against it; the owner plugs the adapter in.
  r = ot::test::finetune_and_plug_in(tmp.file("full"), tmp.file("bundle"), tmp.file("text.txt"), tmp.file("adapter"),
                                     tmp.file("plugged"));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // An energy fraction, with channel pruning, exported plain: dense, full width, same logits.
  r = ot::test::run_cli(emulator + "--svd 0.9 --prune-channels 0.5 --out " + tmp.file("both"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = ot::test::run_cli("convert plain-hf --model " + tmp.file("both") + " --out " + tmp.file("plain"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto plain_cfg = nlohmann::json::parse(ot::read_text_file(tmp.file("plain/config.json")));
  EXPECT_FALSE(plain_cfg["offsite"].contains("svd_ranks"));
  EXPECT_FALSE(plain_cfg["offsite"].contains("mlp_channels"));
  const ot::StateDict flat = ot::SafetensorsFile::open(tmp.file("plain/model.safetensors")).all();
  EXPECT_EQ(flat.at("model.layers.1.self_attn.q_proj.weight").sizes(), (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(flat.at("model.layers.1.mlp.down_proj.weight").size(1), plain_cfg["intermediate_size"].get<int64_t>());
  ot::DecoderLM both = ot::load_model(tmp.file("both")), plain = ot::load_model(tmp.file("plain"));
  torch::NoGradGuard ng;
  const at::Tensor ids = torch::randint(3, 512, {2, 20}, torch::kLong);
  EXPECT_LE((both->forward(ids).logits - plain->forward(ids).logits).abs().max().item<double>(), 1e-4);
}

}  // namespace
