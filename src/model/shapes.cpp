// model/shapes.cpp: see shapes.h. Numbers from the published configs of these models.
#include "model/shapes.h"

#include "util/error.h"

namespace ot {

namespace {
nlohmann::json opt(int64_t layers, int64_t hidden, int64_t heads) {
  return {{"model_type", "opt"}, {"vocab_size", 50272}, {"hidden_size", hidden}, {"num_hidden_layers", layers},
          {"num_attention_heads", heads}, {"ffn_dim", 4 * hidden}, {"max_position_embeddings", 2048},
          {"do_layer_norm_before", true}, {"word_embed_proj_dim", hidden}, {"pad_token_id", 1},
          {"bos_token_id", 2}, {"eos_token_id", 2}, {"dropout", 0.1}, {"activation_function", "relu"}};
}
nlohmann::json gpt2(int64_t layers, int64_t hidden, int64_t heads) {
  return {{"model_type", "gpt2"}, {"vocab_size", 50257}, {"n_embd", hidden}, {"n_layer", layers},
          {"n_head", heads}, {"n_positions", 1024}, {"bos_token_id", 50256}, {"eos_token_id", 50256},
          {"activation_function", "gelu_new"}};
}
}  // namespace

std::vector<std::string> named_shapes() { return {"opt-125m", "opt-1.3b", "opt-6.7b", "gpt2", "gpt2-xl"}; }

nlohmann::json named_shape(const std::string& name) {
  if (name == "opt-125m") return opt(12, 768, 12);
  if (name == "opt-1.3b") return opt(24, 2048, 32);
  if (name == "opt-6.7b") return opt(32, 4096, 32);
  if (name == "gpt2") return gpt2(12, 768, 12);
  if (name == "gpt2-xl") return gpt2(48, 1600, 25);
  fail("--shape: '", name, "' is not a known shape (expected opt-125m, opt-1.3b, opt-6.7b, gpt2 or gpt2-xl)");
}

}  // namespace ot
