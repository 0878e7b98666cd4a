// cli/forward.cpp: `ot forward --model DIR (--input IDS.json | --pixels PIXELS.safetensors)
// --output OUT.safetensors [--hidden-states] [--interpolate-pos-encoding]`: a language model's
// logits or a vision encoder's outputs (and hidden states) for one batch, for parity checks.
#include "cli/commands.h"
#include "cli/common.h"
#include "model/forward_io.h"
#include "model/load.h"
#include "util/error.h"

namespace ot::cli {

void register_forward(CLI::App& app) {
  struct Args {
    std::string model, input, pixels, output;
    bool hidden_states = false, interpolate = false;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "forward", "Run a model on token ids (or a vision encoder on pixels) and save its outputs (and hidden states)");
  cmd->add_option("--model", args->model, "HF checkpoint directory or offsite bundle")->required();
  auto* input = cmd->add_option(
      "--input", args->input,
      "language models: JSON {\"input_ids\": [[...]], \"attention_mask\": [[...]], \"position_ids\": [[...]]}");
  auto* pixels = cmd->add_option("--pixels", args->pixels,
                                 "vision encoders: safetensors file with 'pixel_values' [B,C,H,W] float32 (preprocessed)");
  input->excludes(pixels);
  cmd->add_option("--output", args->output,
                  "safetensors file to write: logits [B,T,V] float32; for a vision encoder logits [B,labels] "
                  "(classifier), last_hidden_state, pooler_output (encoder), image_embeds (projection)")
      ->required();
  cmd->add_flag("--hidden-states", args->hidden_states,
                "also save 'embeddings' (input to block 0) and 'hidden_states.<i>' (output of block i)");
  cmd->add_flag("--interpolate-pos-encoding", args->interpolate,
                "vision encoders: accept images of another size, resizing the position embeddings");
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    OT_REQUIRE(!args->input.empty() || !args->pixels.empty(),
               "forward: give --input IDS.json (language model) or --pixels PIXELS.safetensors (vision encoder)");
    LoadOptions lo = apply_runtime_options(args->rt);
    const bool vision = is_vision_model_dir(args->model);
    if (vision) {
      OT_REQUIRE(!args->pixels.empty(), "forward: ", args->model,
                 " is a vision encoder: give --pixels PIXELS.safetensors, not --input");
      at::Tensor px = read_pixel_values(args->pixels);  // validate input before loading the model
      VisionEncoder model = load_vision_model(args->model, lo);
      run_vision_forward_to_file(model, px, args->pixels, args->output, args->hidden_states, args->interpolate);
      return;
    }
    OT_REQUIRE(!args->input.empty(), "forward: ", args->model,
               " is a language model: give --input IDS.json, not --pixels");
    OT_REQUIRE(!args->interpolate, "forward: --interpolate-pos-encoding applies to vision encoders only");
    ForwardInput in = read_forward_input(args->input);  // validate input before loading the model
    DecoderLM model = load_model(args->model, lo);
    run_forward_to_file(model, in, args->output, args->hidden_states);
  });
}

}  // namespace ot::cli
