// model/forward_io.h: the `ot forward` file contract. Input IDS.json:
//   {"input_ids": [[...], ...], "attention_mask": [[...], ...], "position_ids": [[...], ...]}
// (the last two optional; rows of equal length). Output OUT.safetensors: `logits` (B, T, V)
// float32; with hidden states also `embeddings` (input to block 0) and `hidden_states.<i>`
// (raw output of block i), all float32.
// Vision encoders: input PIXELS.safetensors holding `pixel_values` (B, channels, H, W),
// already preprocessed. Output: `logits` (B, labels) for a classifier; `last_hidden_state`
// (B, T, C); for an encoder without a classifier `pooler_output` (B, C); where the model has
// a projection `image_embeds` (B, projection_dim); with hidden states also `embeddings` and
// `hidden_states.<i>` as above, all float32.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "model/decoder_lm.h"
#include "model/vision_encoder.h"

namespace ot {

struct ForwardInput {
  at::Tensor input_ids;       // (B, T) int64
  at::Tensor attention_mask;  // (B, T) int64 or undefined
  at::Tensor position_ids;    // (B, T) int64 or undefined
};

// Parses and validates IDS.json (`path` names the file in errors).
ForwardInput read_forward_input(const std::string& path);
ForwardInput parse_forward_input(const std::string& json_text, const std::string& source);

// Runs the model and writes OUT.safetensors atomically.
void run_forward_to_file(DecoderLM& model, const ForwardInput& in, const std::string& out_path,
                         bool hidden_states);

// Reads `pixel_values` from a safetensors file (`path` names the file in errors).
at::Tensor read_pixel_values(const std::string& path);

// Runs the vision encoder and writes OUT.safetensors atomically; `source` names the pixels'
// file in errors about their shape.
void run_vision_forward_to_file(VisionEncoder& model, const at::Tensor& pixels, const std::string& source,
                                const std::string& out_path, bool hidden_states, bool interpolate_positions);

}  // namespace ot
