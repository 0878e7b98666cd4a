// tests/unit/decoder_parity.h: the checks every decoder fixture gets, in the JSON format the
// hf-parity (transformers 4.35.2) and hf-families (4.55) fixtures share: logits, loss and
// per-sequence loss, the embeddings and every block's raw output of sequence 0, and the same
// logits read from pytorch_model.bin.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint/hf_checkpoint.h"
#include "hf_fixtures.h"
#include "model/decoder_lm.h"
#include "model/load.h"

namespace ot::test {

// Forward of the fixture's input_ids: logits within 1e-4, losses within 1e-5, embeddings and
// block outputs within 1e-4.
inline void expect_decoder_parity(ot::DecoderLM& m, const nlohmann::json& fx) {
  const at::Tensor ids = json_tensor(fx["input_ids"], torch::kLong);
  torch::NoGradGuard ng;
  ot::ForwardOptions fo;
  fo.hidden_states = true;
  const auto out = m->forward(ids, {}, {}, fo);
  EXPECT_LT(max_abs_diff(out.logits, json_tensor(fx["logits"], torch::kFloat)), 1e-4);
  EXPECT_NEAR(ot::causal_lm_loss(out.logits, ids).item<double>(), fx["loss"].get<double>(), 1e-5);
  for (int64_t b = 0; b < ids.size(0); ++b)
    EXPECT_NEAR(ot::causal_lm_loss(out.logits.narrow(0, b, 1), ids.narrow(0, b, 1)).item<double>(),
                fx["loss_per_sequence"][b].get<double>(), 1e-5)
        << "sequence " << b;
  const auto& hs = fx["hidden_states_seq0"];
  EXPECT_LT(max_abs_diff(out.embeddings[0], json_tensor(hs["hidden_states_hf"][0], torch::kFloat)), 1e-4);
  ASSERT_EQ(out.block_outputs.size(), hs["decoder_layer_outputs"].size());
  for (size_t i = 0; i < out.block_outputs.size(); ++i)
    EXPECT_LT(max_abs_diff(out.block_outputs[i][0], json_tensor(hs["decoder_layer_outputs"][i], torch::kFloat)), 1e-4)
        << "block " << i;
}

// The model directory `dir` read from its pytorch_model.bin alone gives the fixture's logits.
inline void expect_torch_bin_logits(const std::string& dir, const nlohmann::json& fx) {
  ot::test::TempDir tmp;
  std::filesystem::create_symlink(dir + "/config.json", tmp.file("config.json"));
  std::filesystem::create_symlink(dir + "/pytorch_model.bin", tmp.file("pytorch_model.bin"));
  ASSERT_EQ(ot::find_weight_files(tmp.path()).format, "torch");
  ot::DecoderLM m = ot::load_model(tmp.path());
  torch::NoGradGuard ng;
  const auto out = m->forward(json_tensor(fx["input_ids"], torch::kLong));
  EXPECT_LT(max_abs_diff(out.logits, json_tensor(fx["logits"], torch::kFloat)), 1e-4);
}

}  // namespace ot::test
