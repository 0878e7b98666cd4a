// checkpoint/llama2c.h: import of llama2.c checkpoints (karpathy/llama2.c, legacy fp32
// export: 7 x int32 header, then fp32 weights) as a Hugging Face LLaMA config + state dict,
// and the `ot convert llama2c` operation that writes them as an HF checkpoint directory.
//
// llama2.c's RoPE rotates interleaved pairs (2i, 2i+1) of each head; HF LLaMA rotates the
// pair (i, i + head_dim/2) ("rotate_half"), both with frequency theta^(-2i/head_dim). The
// importer therefore permutes the rows of wq and wk within each head, moving llama2.c row
// 2i to row i and row 2i+1 to row i + head_dim/2, so the HF model computes the same
// function (q.k is unchanged because q and k are permuted alike).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint/llama2c_header.h"
#include "checkpoint/state_dict.h"

namespace ot {

struct Llama2cModel {
  Llama2cParams params;
  nlohmann::json config;  // HF LlamaConfig (config.json contents)
  // HF names: model.embed_tokens.weight (V, D), model.layers.{i}.self_attn.q_proj.weight
  // (H*hd, D), k_proj/v_proj (KV*hd, D), o_proj (D, H*hd), mlp.gate_proj/up_proj (F, D),
  // mlp.down_proj (D, F), input_layernorm/post_attention_layernorm (D), model.norm.weight
  // (D), lm_head.weight (V, D) only when not shared. All fp32, CPU.
  StateDict weights;
};

// Reads a llama2.c fp32 checkpoint. Throws ot::Error naming the file for a bad header,
// a size that does not match the header (truncated/trailing bytes) or an unsupported
// (versioned "ak42") export.
Llama2cModel load_llama2c(const std::string& path);

// The HF LlamaConfig for llama2.c parameters (rms_norm_eps 1e-5, rope_theta 1e4,
// max_position_embeddings = seq_len, bos 1, eos 2).
nlohmann::json llama2c_hf_config(const Llama2cParams& p);

// Writes `out_dir` atomically: config.json, model.safetensors and a copy of `tokenizer`
// (a llama2.c tokenizer.bin) as tokenizer.bin. Nothing is written if anything fails.
void convert_llama2c(const std::string& checkpoint, const std::string& tokenizer,
                     const std::string& out_dir);

}  // namespace ot
