// tests/unit/test_families.cpp: the RoPE decoder relatives of LLaMA (Mistral, Qwen2, LLaMA 3
// RoPE scaling, Gemma, Phi-3) against Hugging Face transformers 4.55 (fixtures in
// ../shared/fixtures/hf-families): logits and every decoder layer's output (atol 1e-4), loss
// (atol 1e-5), right/left padding and explicit position ids (valid positions), loading from
// model.safetensors and pytorch_model.bin, save/reload with HF's tensor names, RoPE inverse
// frequencies, Mistral's sliding-window mask in training and in KV-cache generation, config
// keys refused by name; then the offsite workflow on a tiny random model of each family.
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <filesystem>
#include <set>

#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/safetensors.h"
#include "decoder_parity.h"
#include "hf_fixtures.h"
#include "model/decoder_lm.h"
#include "model/flops.h"
#include "model/generate.h"
#include "model/load.h"
#include "model/peft.h"
#include "offsite/adapter.h"
#include "offsite/distill.h"
#include "offsite/emulator.h"
#include "offsite/layer_selection.h"
#include "test_support.h"
#include "token_blocks.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using ot::test::json_tensor;
using ot::test::masked_max_abs_diff;
using ot::test::max_abs_diff;
namespace fs = std::filesystem;

std::string family_dir(const std::string& name) { return ot::test::shared_path("fixtures/hf-families/" + name); }

const nlohmann::json& family_fixture(const std::string& name) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, nlohmann::json::parse(ot::read_text_file(family_dir(name) + ".json"))).first;
  return it->second;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ot::Error& e) {
    return e.what();
  }
  return "(no error)";
}

class FamilyParity : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyParity, LogitsLossAndEveryLayerFromSafetensors) {
  const auto& fx = family_fixture(GetParam());
  ASSERT_EQ(ot::find_weight_files(family_dir(GetParam())).format, "safetensors");
  ot::DecoderLM m = ot::load_model(family_dir(GetParam()));
  EXPECT_EQ(ot::arch_name(m->config().arch), fx["arch"].get<std::string>());
  ot::test::expect_decoder_parity(m, fx);
}

TEST_P(FamilyParity, PytorchModelBinGivesTheSameLogits) {
  ot::test::expect_torch_bin_logits(family_dir(GetParam()), family_fixture(GetParam()));
}

TEST_P(FamilyParity, PaddedBatchesAtTheirValidPositions) {
  const auto& fx = family_fixture(GetParam());
  ot::DecoderLM m = ot::load_model(family_dir(GetParam()));
  torch::NoGradGuard ng;
  for (const char* side : {"right", "left"}) {
    const auto& p = fx["padded"][side];
    auto mask = json_tensor(p["attention_mask"], torch::kLong);
    auto out = m->forward(json_tensor(p["input_ids"], torch::kLong), mask);
    EXPECT_LT(masked_max_abs_diff(out.logits, json_tensor(p["logits"], torch::kFloat), mask), 1e-4) << side;
    // The left loss also scores the last pad position (it predicts the first real token),
    // so it checks how a query with no visible key attends.
    EXPECT_NEAR(ot::causal_lm_loss(out.logits, json_tensor(p["labels"], torch::kLong)).item<double>(),
                p["loss"].get<double>(), 1e-5)
        << side;
  }
  const auto& p = fx["padded"]["left_with_position_ids"];
  auto mask = json_tensor(p["attention_mask"], torch::kLong);
  auto out = m->forward(json_tensor(p["input_ids"], torch::kLong), mask, json_tensor(p["position_ids"], torch::kLong));
  EXPECT_LT(masked_max_abs_diff(out.logits, json_tensor(p["logits"], torch::kFloat), mask), 1e-4);
  const auto& u = fx["padded"]["unpadded_row1"];
  auto alone = m->forward(json_tensor(u["input_ids"], torch::kLong).unsqueeze(0));
  EXPECT_LT(max_abs_diff(alone.logits[0], json_tensor(u["logits"], torch::kFloat)), 1e-4);
}

TEST_P(FamilyParity, SaveAndReloadKeepTheCheckpointsTensorNames) {
  const auto& fx = family_fixture(GetParam());
  ot::DecoderLM m = ot::load_model(family_dir(GetParam()));
  ot::test::TempDir tmp;
  ot::save_model(m, tmp.file("copy"));
  std::set<std::string> written, expected;
  for (const auto& kv : ot::SafetensorsFile::open(tmp.file("copy/model.safetensors")).all()) written.insert(kv.first);
  for (const auto& k : fx["safetensors_keys"]) expected.insert(k.get<std::string>());
  EXPECT_EQ(written, expected);
  ot::DecoderLM back = ot::load_model(tmp.file("copy"));
  auto a = m->hf_state_dict(), b = back->hf_state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& kv : a) {
    ASSERT_TRUE(b.count(kv.first)) << kv.first;
    EXPECT_TRUE(torch::equal(kv.second, b[kv.first])) << kv.first;
  }
  EXPECT_EQ(ot::load_hf_config(tmp.file("copy"))["model_type"], fx["arch"]);
  torch::NoGradGuard ng;
  EXPECT_LT(max_abs_diff(back->forward(json_tensor(fx["input_ids"], torch::kLong)).logits,
                         json_tensor(fx["logits"], torch::kFloat)),
            1e-4);
}

TEST_P(FamilyParity, RopeInverseFrequenciesAreHFs) {
  const auto& fx = family_fixture(GetParam());
  ot::DecoderLM m = ot::load_model(family_dir(GetParam()));
  const auto& c = m->config();
  EXPECT_EQ(c.head_dim, fx["rope"]["head_dim"].get<int64_t>());
  auto inv = ot::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling, c.max_positions, 16, torch::kCPU);
  auto ref = json_tensor(fx["rope"]["inv_freq"], torch::kFloat);
  EXPECT_TRUE(torch::allclose(inv, ref, 1e-6, 0.0)) << inv << ref;
}

TEST_P(FamilyParity, CachedGenerationEqualsRecomputation) {
  ot::DecoderLM m = ot::load_model(family_dir(GetParam()));
  std::vector<int64_t> prompt = {5, 17, 250, 999, 3, 42};
  ot::GenerateOptions g;
  g.max_new_tokens = 20;
  auto cached = ot::generate(m, prompt, g);
  g.use_cache = false;
  EXPECT_EQ(cached, ot::generate(m, prompt, g));
}

INSTANTIATE_TEST_SUITE_P(HF455, FamilyParity,
                         ::testing::Values("mistral", "qwen2", "llama3", "llama3-smooth", "gemma", "phi3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(FamilyRope, Llama3CasesMatchHF) {
  auto cases = nlohmann::json::parse(ot::read_text_file(family_dir("rope_llama3_cases.json")))["cases"];
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& k : cases) {
    ot::RopeScaling s;
    s.kind = ot::RopeScaling::Kind::kLlama3;
    s.factor = k["factor"].get<double>();
    s.low_freq_factor = k["low_freq_factor"].get<double>();
    s.high_freq_factor = k["high_freq_factor"].get<double>();
    s.original_max_positions = k["original_max_position_embeddings"].get<int64_t>();
    const int64_t D = k["head_dim"].get<int64_t>();
    const double theta = k["rope_theta"].get<double>();
    auto plain = ot::rope_inv_freq(D, theta, ot::RopeScaling{}, 0, 0, torch::kCPU);
    EXPECT_TRUE(torch::allclose(plain, json_tensor(k["inv_freq_default"], torch::kFloat), 1e-6, 0.0));
    auto scaled = ot::rope_inv_freq(D, theta, s, 0, 0, torch::kCPU);
    EXPECT_TRUE(torch::allclose(scaled, json_tensor(k["inv_freq_llama3"], torch::kFloat), 1e-6, 0.0))
        << "theta " << theta << " head_dim " << D << "\n" << scaled;
  }
}

TEST(FamilyRope, LinearAndDynamicScalingFollowTheirDefinitions) {
  ot::RopeScaling lin;
  lin.kind = ot::RopeScaling::Kind::kLinear;
  lin.factor = 4.0;
  auto plain = ot::rope_inv_freq(16, 1e4, ot::RopeScaling{}, 128, 0, torch::kCPU);
  EXPECT_TRUE(torch::equal(ot::rope_inv_freq(16, 1e4, lin, 128, 0, torch::kCPU), plain / 4.0));
  ot::RopeScaling dyn;
  dyn.kind = ot::RopeScaling::Kind::kDynamic;
  dyn.factor = 2.0;
  // Within max_position_embeddings: the default frequencies.
  EXPECT_TRUE(torch::equal(ot::rope_inv_freq(16, 1e4, dyn, 128, 128, torch::kCPU), plain));
  // Beyond: theta * (factor * L / max - (factor - 1))^(D / (D - 2)).
  const double grown = 1e4 * std::pow(2.0 * 200 / 128 - 1.0, 16.0 / 14.0);
  auto expect = 1.0 / torch::pow(torch::tensor(grown, torch::kDouble), torch::arange(0, 16, 2, torch::kDouble) / 16.0);
  auto got = ot::rope_inv_freq(16, 1e4, dyn, 128, 200, torch::kCPU);
  EXPECT_TRUE(torch::allclose(got.to(torch::kDouble), expect, 1e-5, 0.0)) << got << expect;
  EXPECT_FALSE(torch::allclose(got, plain));
}

TEST(FamilySlidingWindow, MistralMaskIsHFsBand) {
  const std::string mistral = "mistral";  // named: a reference into the cache, not to a temporary
  const auto& fx = family_fixture(mistral);
  ot::DecoderLM m = ot::load_model(family_dir("mistral"));
  ASSERT_EQ(m->config().sliding_window, fx["sliding_window"]["sliding_window"].get<int64_t>());
  auto ids = json_tensor(fx["input_ids"], torch::kLong);
  auto ctx = m->make_context(ids, {}, {}, 0);
  ASSERT_TRUE(ctx.window_bias.defined());
  auto visible = (ctx.window_bias[0][0] == 0).to(torch::kLong);  // (T, S)
  EXPECT_TRUE(torch::equal(visible, json_tensor(fx["sliding_window"]["visible_mask_layer0_row0"], torch::kLong)));
  // Up to the window, the band is the causal mask: no bias at all (the fused causal kernel).
  auto shorter = m->make_context(ids.narrow(1, 0, 8), {}, {}, 0);
  EXPECT_FALSE(shorter.window_bias.defined());
}

// With a cache, each new token's query must not see keys older than the window: every
// step's logits equal the full forward's at that position, over more tokens than the window.
TEST(FamilySlidingWindow, MistralCachedStepsEqualTheFullForward) {
  ot::DecoderLM m = ot::load_model(family_dir("mistral"));
  const int64_t window = m->config().sliding_window;
  torch::manual_seed(3);
  auto ids = torch::randint(4, 1000, {1, 3 * window}, torch::kLong);
  torch::NoGradGuard ng;
  auto full = m->forward(ids).logits;
  ot::KVCache cache;
  ot::ForwardOptions fo;
  fo.cache = &cache;
  auto first = m->forward(ids.narrow(1, 0, 3), {}, {}, fo).logits;  // a prompt, then one token a step
  EXPECT_LT(max_abs_diff(first, full.narrow(1, 0, 3)), 1e-5);
  for (int64_t t = 3; t < ids.size(1); ++t) {
    auto step = m->forward(ids.narrow(1, t, 1), {}, {}, fo).logits;
    EXPECT_LT(max_abs_diff(step[0][0], full[0][t]), 1e-5) << "position " << t;
  }
  // The window matters: the same weights without it give other logits from position `window` on.
  auto ctx = m->make_context(ids, {}, {}, 0);
  ctx.window_bias = ctx.bias;
  auto h = m->embed(ids, ctx);
  for (int64_t b = 0; b < m->num_blocks(); ++b) h = m->run_block(b, h, ctx);
  auto unwindowed = m->head(h);
  EXPECT_LT(max_abs_diff(unwindowed.narrow(1, 0, window), full.narrow(1, 0, window)), 1e-5);
  EXPECT_GT(max_abs_diff(unwindowed.narrow(1, window, window), full.narrow(1, window, window)), 1e-2);
}

nlohmann::json tiny_config(const std::string& family) {
  nlohmann::json j = {{"model_type", family}, {"vocab_size", 96}, {"hidden_size", 32}, {"num_hidden_layers", 4},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 48},
                      {"max_position_embeddings", 64}, {"pad_token_id", 0}, {"bos_token_id", 1},
                      {"eos_token_id", 2}, {"rms_norm_eps", 1e-6}};
  if (family == "mistral") j["sliding_window"] = 4;
  if (family == "qwen2") j.update({{"use_sliding_window", true}, {"sliding_window", 4}, {"max_window_layers", 2}});
  if (family == "gemma") j.update({{"head_dim", 12}, {"hidden_act", "gelu_pytorch_tanh"}});
  if (family == "llama") j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  return j;
}

TEST(FamilyConfig, KeysThatAreNotComputedExactlyAreRefusedByName) {
  auto parse = [](nlohmann::json j) { return ot::parse_model_config(j, "cfg/config.json"); };
  auto e = error_of([&] {
    auto j = tiny_config("phi3");
    j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0}}, {"long_factor", {1.0}}};
    parse(j);
  });
  EXPECT_NE(e.find("cfg/config.json: key 'rope_scaling': phi3 RoPE scaling 'longrope' is not supported"),
            std::string::npos)
      << e;
  e = error_of([&] {
    auto j = tiny_config("phi3");
    j["partial_rotary_factor"] = 0.5;
    parse(j);
  });
  EXPECT_NE(e.find("key 'partial_rotary_factor'"), std::string::npos) << e;
  e = error_of([&] {
    auto j = tiny_config("llama");
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    parse(j);
  });
  EXPECT_NE(e.find("key 'rope_scaling.rope_type': 'yarn' is not supported"), std::string::npos) << e;
  e = error_of([&] {
    auto j = tiny_config("llama");
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    parse(j);
  });
  EXPECT_NE(e.find("key 'rope_scaling.low_freq_factor'"), std::string::npos) << e;
  e = error_of([&] {
    auto j = tiny_config("qwen2");
    j["use_sliding_window"] = false;
    j["layer_types"] = {"full_attention", "full_attention", "sliding_attention", "sliding_attention"};
    parse(j);
  });
  EXPECT_NE(e.find("key 'layer_types'"), std::string::npos) << e;
  e = error_of([&] {
    auto j = tiny_config("gemma");
    j["hidden_activation"] = "gelu";
    parse(j);
  });
  EXPECT_NE(e.find("key 'hidden_activation'"), std::string::npos) << e;

  // What is accepted: the old `type` key, qwen2 without a window, its window per layer.
  EXPECT_EQ(parse(tiny_config("llama")).rope_scaling.kind, ot::RopeScaling::Kind::kLinear);
  auto q = tiny_config("qwen2");
  q["use_sliding_window"] = false;
  EXPECT_EQ(parse(q).sliding_window, 0);
  auto qc = parse(tiny_config("qwen2"));
  EXPECT_EQ(qc.sliding_window, 4);
  EXPECT_EQ(std::vector<bool>({qc.layer_slides(0), qc.layer_slides(1), qc.layer_slides(2), qc.layer_slides(3)}),
            std::vector<bool>({false, false, true, true}));
  auto g = parse(tiny_config("gemma"));
  EXPECT_EQ(g.head_dim, 12);
  EXPECT_TRUE(g.tie_word_embeddings);
  EXPECT_EQ(g.activation, "gelu_pytorch_tanh");
  EXPECT_EQ(ot::default_lora_targets(ot::Arch::kPhi3),
            (std::vector<std::string>{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}));
}

TEST(FamilyConfig, CliInspectReportsHeadDimAndTheSlidingWindow) {
  auto r = ot::test::run_cli("inspect " + family_dir("mistral") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model_type"], "mistral");
  EXPECT_EQ(j["head_dim"], 16);
  EXPECT_EQ(j["sliding_window"]["window"], 8);
  EXPECT_EQ(j["sliding_window"]["blocks"], 4);
  r = ot::test::run_cli("inspect " + family_dir("phi3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture phi3: 4 blocks"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sliding window"), std::string::npos) << r.out;
}

// Llama 3.2 ties its head to the embeddings: no lm_head is written, and reloading re-ties it.
TEST(FamilyConfig, LlamaWithATiedHeadWritesAndReadsNoLmHead) {
  auto j = tiny_config("llama");
  j["tie_word_embeddings"] = true;
  ot::DecoderLM m(ot::parse_model_config(j, "tiny/config.json"));
  EXPECT_TRUE(m->config().tie_word_embeddings);
  torch::manual_seed(2);
  m->init_weights(0.2);
  ot::test::TempDir tmp;
  ot::save_model(m, tmp.file("tied"));
  auto sd = ot::SafetensorsFile::open(tmp.file("tied/model.safetensors")).all();
  EXPECT_EQ(sd.count("lm_head.weight"), 0u);
  EXPECT_EQ(sd.count("model.embed_tokens.weight"), 1u);
  ot::DecoderLM back = ot::load_model(tmp.file("tied"));
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, 80, {1, 9}, torch::kLong);
  auto logits = back->forward(ids).logits;
  EXPECT_TRUE(torch::equal(logits, m->forward(ids).logits));
  // The head is the embedding table: zeroing the row of a token not in the input zeroes
  // exactly that token's logits.
  back->hf_state_dict().at("model.embed_tokens.weight")[90].zero_();
  auto after = back->forward(ids).logits;
  EXPECT_TRUE(torch::equal(after.select(-1, 90), torch::zeros_like(after.select(-1, 90))));
  EXPECT_TRUE(torch::equal(after.narrow(-1, 0, 90), logits.narrow(-1, 0, 90)));
}

TEST(FamilyConfig, FlopsCountWindowedKeysAndExplicitHeadDim) {
  ot::DecoderLM mistral(ot::parse_model_config(tiny_config("mistral"), "tiny/config.json"));
  // Every Mistral block sees at most 4 keys: the count stops growing past the window.
  EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(*mistral, 100), ot::forward_flops_per_token(*mistral, 50));
  ot::DecoderLM llama(ot::parse_model_config(tiny_config("llama"), "tiny/config.json"));
  EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(*llama, 100) - ot::forward_flops_per_token(*llama, 50),
                   4 * 4.0 * 50 * 32);
  ot::DecoderLM gemma(ot::parse_model_config(tiny_config("gemma"), "tiny/config.json"));
  EXPECT_DOUBLE_EQ(ot::forward_flops_per_token(*gemma, 100) - ot::forward_flops_per_token(*gemma, 50),
                   4 * 4.0 * 50 * (4 * 12));
}

// The offsite workflow on a tiny random model of each family: an emulator bundle (1 of the 2
// middle blocks kept) that computes what the original's own blocks compute in its order (so a
// sliding-window block keeps its original layer's window), saved and reloaded; distillation,
// adapter fine-tuning with LoRA and plug-in; an untouched adapter plugs in bit-exactly.
class FamilyOffsite : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyOffsite, EmulatorDistillFineTunePlugIn) {
  at::set_num_threads(1);
  ot::ModelConfig cfg = ot::parse_model_config(tiny_config(GetParam()), "tiny/config.json");
  torch::manual_seed(11);
  ot::DecoderLM full(cfg);
  full->init_weights(0.2);
  full->eval();
  ot::test::TempDir tmp;
  ot::save_model(full, tmp.file("full"));
  full = ot::load_model(tmp.file("full"));

  ot::EmulatorOptions o;
  o.bottom = 1;
  o.top = 1;
  o.layers = 1;
  auto layout = ot::make_layout(4, o, ot::select_middle_blocks(2, 1, "uniform"));
  ot::DecoderLM built = ot::build_bundle(full, layout, o);
  ot::save_model(built, tmp.file("bundle"));
  ot::DecoderLM bundle = ot::load_model(tmp.file("bundle"));
  ASSERT_EQ(bundle->block_origin(), layout.block_origin);

  const int64_t T = 12;  // longer than the tiny sliding windows (4)
  torch::manual_seed(5);
  auto ids = torch::randint(3, 96, {2, T}, torch::kLong);
  {
    torch::NoGradGuard ng;
    auto ctx = full->make_context(ids, {}, {}, 0);
    auto h = full->embed(ids, ctx);
    for (int64_t b : layout.block_origin) h = full->run_block(b, h, ctx);
    EXPECT_TRUE(torch::equal(bundle->forward(ids).logits, full->head(h)));
    if (cfg.sliding_window > 0) {
      // Which blocks slide follows their original index: dropping the window from the
      // context changes exactly the outputs of the blocks whose original layer slides.
      auto bctx = bundle->make_context(ids, {}, {}, 0);
      auto plain = bctx;
      plain.window_bias = plain.bias;
      auto x = bundle->embed(ids, bctx);
      for (int64_t j = 0; j < bundle->num_blocks(); ++j) {
        auto with = bundle->run_block(j, x, bctx), without = bundle->run_block(j, x, plain);
        const bool slides = cfg.layer_slides(layout.block_origin[static_cast<size_t>(j)]);
        EXPECT_EQ(!torch::equal(with, without), slides) << "bundle block " << j;
        x = with;
      }
    }
  }

  // Distil the emulator block a few steps.
  ot::test::TokenBlocks data(16, T, 96, 3);
  ot::Distiller d(bundle.ptr(), full.ptr(), layout, ot::DistillOptions{0.0, 1.0});
  ot::TrainerOptions to;
  to.lr = 2e-3;
  to.epochs = 2;
  to.batch_size = 4;
  to.schedule = "constant";
  {
    ot::Trainer t(d.trainable(), to);
    t.fit(data, [&](const ot::Batch& b, ot::Metrics& m) { return d.loss(b, m); });
  }

  // The data owner: an untouched adapter plugs back in bit-exactly.
  const std::string fp = ot::model_fingerprint(*full);
  auto untouched = ot::extract_adapter(*bundle, layout.adapter_blocks(), false, fp, 4);
  ot::save_adapter(untouched, tmp.file("adapter0"));
  const ot::IssuedAdapter issued = ot::read_issued_adapter(tmp.file("bundle"), *full);
  ot::DecoderLM target = ot::load_model(tmp.file("full"));
  torch::NoGradGuard outer;
  auto before = target->forward(ids).logits;
  ot::plug_in(*target, ot::load_adapter(tmp.file("adapter0")), tmp.file("adapter0"), issued);
  EXPECT_TRUE(torch::equal(target->forward(ids).logits, before));
  {
    torch::AutoGradMode on(true);
    // Fine-tune the adapter blocks (LoRA on the family's default targets), merge, plug in.
    ot::PeftOptions po;
    po.method = "lora";
    std::vector<int64_t> positions = {0, bundle->num_blocks() - 1};
    ot::apply_peft(*bundle, positions, po);
    ot::set_trainable(*bundle, positions, false, po);
    ot::NamedTensors params;
    for (const auto& item : bundle->named_parameters(true))
      if (item.value().requires_grad()) params.emplace_back(item.key(), item.value());
    ASSERT_FALSE(params.empty());
    bundle->train();
    auto lm = [&](const ot::Batch& b, ot::Metrics&) { return ot::causal_lm_loss(bundle->forward(b.input_ids).logits, b.labels); };
    ot::Metrics unused;
    const double start = lm(data.batch({0, 1, 2, 3}), unused).item<double>();
    to.lr = 1e-2;
    to.epochs = 3;
    ot::Trainer t(params, to);
    t.fit(data, lm);
    bundle->eval();
    EXPECT_LT(lm(data.batch({0, 1, 2, 3}), unused).item<double>(), start);
    ot::merge_peft(*bundle);
  }
  auto tuned = ot::extract_adapter(*bundle, layout.adapter_blocks(), false, fp, 4);
  ot::save_adapter(tuned, tmp.file("adapter1"));
  ot::plug_in(*target, ot::load_adapter(tmp.file("adapter1")), tmp.file("adapter1"), issued);
  auto after = target->forward(ids).logits;
  EXPECT_FALSE(torch::equal(after, before));
  EXPECT_TRUE(torch::isfinite(after).all().item<bool>());
  // Evaluation of the plugged-in model: its loss on the training blocks is finite and the
  // adapter's blocks now hold the tuned tensors.
  auto sd = target->hf_state_dict();
  for (const auto& kv : tuned.tensors) EXPECT_TRUE(torch::equal(sd.at(kv.first), kv.second)) << kv.first;
  auto b = data.batch({0, 1, 2, 3});
  EXPECT_TRUE(std::isfinite(ot::causal_lm_loss(target->forward(b.input_ids).logits, b.labels).item<double>()));
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyOffsite, ::testing::Values("mistral", "qwen2", "llama", "gemma", "phi3"),
                         [](const auto& info) { return info.param; });

}  // namespace
