// checkpoint/llama2c.cpp: see llama2c.h. The weight order follows llama2.c's run.c
// (memory_map_weights): each kind of tensor is stored for all layers back to back. The
// header and the file size are checked by llama2c_header.cpp (torch-free, fuzzed).
#include "checkpoint/llama2c.h"

#include <cstring>
#include <filesystem>
#include <vector>

#include "checkpoint/hf_checkpoint.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

// Hands out consecutive fp32 tensors from the mapped weights.
class Reader {
 public:
  Reader(const char* base) : p_(base) {}
  at::Tensor take(std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    // clone: the result must own its memory, the mapping dies with the loader.
    at::Tensor t = at::from_blob(const_cast<char*>(p_), shape, at::kFloat).clone();
    p_ += n * static_cast<int64_t>(sizeof(float));
    return t;
  }
  void skip(std::uint64_t floats) { p_ += floats * sizeof(float); }

 private:
  const char* p_;
};

// llama2.c interleaved-pair rows -> HF rotate_half rows, per head. w: (heads*hd, D).
at::Tensor permute_rope_rows(const at::Tensor& w, int64_t heads) {
  const int64_t rows = w.size(0), cols = w.size(1), hd = rows / heads;
  return w.view({heads, hd / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

}  // namespace

nlohmann::json llama2c_hf_config(const Llama2cParams& p) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", p.dim},
          {"intermediate_size", p.hidden_dim},
          {"num_hidden_layers", p.n_layers},
          {"num_attention_heads", p.n_heads},
          {"num_key_value_heads", p.n_kv_heads},
          {"vocab_size", p.vocab_size},
          {"max_position_embeddings", p.seq_len},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", p.shared_classifier},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"attention_bias", false},
          {"torch_dtype", "float32"}};
}

Llama2cModel load_llama2c(const std::string& path) {
  OT_REQUIRE(file_exists(path), path, ": no such file (expected a llama2.c checkpoint)");
  auto map = MappedFile::open(path);
  const char* base = map->data();
  // Validates the header and that the file holds exactly the weights it implies.
  const Llama2cParams p = parse_llama2c_header(base, map->size(), path);
  const std::uint64_t hd = static_cast<std::uint64_t>(p.dim / p.n_heads);
  const std::uint64_t kv = hd * static_cast<std::uint64_t>(p.n_kv_heads);
  const std::uint64_t T = static_cast<std::uint64_t>(p.seq_len);

  const int64_t d = p.dim, f = p.hidden_dim, v = p.vocab_size;
  const int64_t q_rows = p.dim, kv_rows = static_cast<int64_t>(kv);
  Reader r(base + kLlama2cHeaderBytes);
  std::vector<at::Tensor> rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  at::Tensor emb = r.take({v, d});
  for (int i = 0; i < p.n_layers; ++i) rms_att.push_back(r.take({d}));
  for (int i = 0; i < p.n_layers; ++i) wq.push_back(r.take({q_rows, d}));
  for (int i = 0; i < p.n_layers; ++i) wk.push_back(r.take({kv_rows, d}));
  for (int i = 0; i < p.n_layers; ++i) wv.push_back(r.take({kv_rows, d}));
  for (int i = 0; i < p.n_layers; ++i) wo.push_back(r.take({d, q_rows}));
  for (int i = 0; i < p.n_layers; ++i) rms_ffn.push_back(r.take({d}));
  for (int i = 0; i < p.n_layers; ++i) w1.push_back(r.take({f, d}));
  for (int i = 0; i < p.n_layers; ++i) w2.push_back(r.take({d, f}));
  for (int i = 0; i < p.n_layers; ++i) w3.push_back(r.take({f, d}));
  at::Tensor norm = r.take({d});
  r.skip(T * hd);  // RoPE tables: HF recomputes them from rope_theta
  at::Tensor wcls = p.shared_classifier ? at::Tensor() : r.take({v, d});

  Llama2cModel m;
  m.params = p;
  m.config = llama2c_hf_config(p);
  StateDict& sd = m.weights;
  sd["model.embed_tokens.weight"] = emb;
  sd["model.norm.weight"] = norm;
  if (!p.shared_classifier) sd["lm_head.weight"] = wcls;
  for (int i = 0; i < p.n_layers; ++i) {
    const std::string pre = "model.layers." + std::to_string(i) + ".";
    sd[pre + "input_layernorm.weight"] = rms_att[i];
    sd[pre + "post_attention_layernorm.weight"] = rms_ffn[i];
    sd[pre + "self_attn.q_proj.weight"] = permute_rope_rows(wq[i], p.n_heads);
    sd[pre + "self_attn.k_proj.weight"] = permute_rope_rows(wk[i], p.n_kv_heads);
    sd[pre + "self_attn.v_proj.weight"] = wv[i];
    sd[pre + "self_attn.o_proj.weight"] = wo[i];
    sd[pre + "mlp.gate_proj.weight"] = w1[i];
    sd[pre + "mlp.down_proj.weight"] = w2[i];
    sd[pre + "mlp.up_proj.weight"] = w3[i];
  }
  return m;
}

void convert_llama2c(const std::string& checkpoint, const std::string& tokenizer,
                     const std::string& out_dir) {
  // Check every input before anything is created.
  OT_REQUIRE(file_exists(tokenizer), tokenizer, ": no such file (expected a llama2.c tokenizer.bin)");
  OT_REQUIRE(file_size(tokenizer) >= 4, tokenizer, ": too short for a llama2.c tokenizer.bin");
  Llama2cModel m = load_llama2c(checkpoint);
  write_dir_atomically(out_dir, [&](const std::string& tmp) {
    write_hf_checkpoint_files(tmp, m.config, m.weights);
    std::error_code ec;
    std::filesystem::copy_file(tokenizer, path_join(tmp, "tokenizer.bin"), ec);
    OT_REQUIRE(!ec, tokenizer, ": cannot copy into ", out_dir, ": ", ec.message());
  });
}

}  // namespace ot
