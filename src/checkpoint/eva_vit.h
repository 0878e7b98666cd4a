// checkpoint/eva_vit.h: import of EVA image encoders in the layout of LAVIS's
// `lavis/models/eva_vit.py` (BLIP-2's EVA-ViT-g, `eva_vit_g.pth`) as a ViT-layout checkpoint
// of model_type `eva_vit` (model/config.h), and `ot convert eva-vit`.
//
// EVA's blocks are ViT blocks: pre-LN attention and MLP with exact GELU. What differs is how
// they are stored: one fused `attn.qkv.weight` (3C, C) with separate `q_bias` and `v_bias`
// (the key has no bias, i.e. a zero one), an MLP of any width (EVA-ViT-g: int(1408 x 4.3637)
// = 6143), LayerNorm eps 1e-6, and no final LayerNorm unless the checkpoint carries one
// (`norm.*`, or BLIP-2's `ln_vision.*` beside `visual_encoder.*`). Layer scale (`gamma_1`),
// relative position bias, mean pooling (`fc_norm`) and EVA-02's blocks (SwiGLU, RoPE) are not
// ViT blocks and are refused by name.
//
//   LAVIS name                          -> written name (ViTModel layout; `vit.` + classifier with a head)
//   cls_token (1, 1, C)                 -> embeddings.cls_token
//   pos_embed (1, 1 + N, C)             -> embeddings.position_embeddings
//   patch_embed.proj.{weight,bias}      -> embeddings.patch_embeddings.projection.*
//   blocks.i.norm1 / norm2              -> encoder.layer.i.layernorm_before / layernorm_after
//   blocks.i.attn.qkv.weight rows [0,C) [C,2C) [2C,3C) -> ...attention.attention.{query,key,value}.weight
//   blocks.i.attn.q_bias, 0, v_bias     -> ...attention.attention.{query,key,value}.bias
//   blocks.i.attn.proj                  -> ...attention.output.dense
//   blocks.i.mlp.fc1 / fc2              -> ...intermediate.dense / output.dense
//   norm or ln_vision                   -> layernorm (final_layernorm: true)
//   head (K, C)                         -> classifier (ViTForImageClassification, K labels)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"

namespace ot {

struct EvaVitImport {
  nlohmann::json config;              // config.json contents (model_type eva_vit)
  StateDict weights;                  // written names, dtype as stored
  std::vector<std::string> left_out;  // keys outside the encoder (a BLIP-2 checkpoint's Q-Former, ...)
};

// Maps a LAVIS-layout state dict. Keys may carry the prefix `visual_encoder.` (a BLIP-2
// checkpoint; its `ln_vision` becomes the final norm, other keys are left out). `num_heads`
// 0 takes EVA-ViT-g's 16 for width 1408 and is otherwise required (weights do not say it).
// Throws ot::Error naming `source` and the key for anything that is not an EVA ViT.
EvaVitImport import_eva_vit(const StateDict& sd, const std::string& source, int64_t num_heads);

// Reads `checkpoint` (a torch.save file; `entry` names the key holding the state dict, e.g.
// "model" for LAVIS's BLIP-2 checkpoints, empty for a plain state dict) and writes `out_dir`
// atomically: config.json and model.safetensors. Returns what was left out.
EvaVitImport convert_eva_vit(const std::string& checkpoint, const std::string& entry, int64_t num_heads,
                             const std::string& out_dir);

}  // namespace ot
