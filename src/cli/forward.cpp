// cli/forward.cpp: `ot forward --model DIR --input IDS.json --output OUT.safetensors
// [--hidden-states]`: logits (and hidden states) of a batch, for parity checks.
#include "cli/commands.h"
#include "cli/common.h"
#include "model/forward_io.h"
#include "model/load.h"

namespace ot::cli {

void register_forward(CLI::App& app) {
  struct Args {
    std::string model, input, output;
    bool hidden_states = false;
    RuntimeOptions rt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("forward", "Run a model on token ids and save logits (and hidden states)");
  cmd->add_option("--model", args->model, "HF checkpoint directory or offsite bundle")->required();
  cmd->add_option("--input", args->input,
                  "JSON {\"input_ids\": [[...]], \"attention_mask\": [[...]], \"position_ids\": [[...]]}")
      ->required();
  cmd->add_option("--output", args->output, "safetensors file to write (logits [B,T,V] float32)")->required();
  cmd->add_flag("--hidden-states", args->hidden_states,
                "also save 'embeddings' (input to block 0) and 'hidden_states.<i>' (output of block i)");
  add_runtime_options(cmd, args->rt);
  cmd->callback([args] {
    LoadOptions lo = apply_runtime_options(args->rt);
    ForwardInput in = read_forward_input(args->input);  // validate input before loading the model
    DecoderLM model = load_model(args->model, lo);
    run_forward_to_file(model, in, args->output, args->hidden_states);
  });
}

}  // namespace ot::cli
