// tests/fuzz/fuzz_bundle.cpp: libFuzzer target for the torch-free checks of loading a model
// or offsite bundle directory (model/load.h): config.json -> parse_model_config, the
// bundle's `offsite` section (bundle_block_origin, bundle_num_original_layers), the config
// written back (model_config_to_json, which must parse again), and the weights file's
// safetensors header. Input: config.json, optionally followed by a NUL byte and the bytes
// of model.safetensors. Any input must load or throw ot::Error (a JSON syntax error counts
// as rejected, as load_hf_config turns it into one); anything else escaping, a crash or a
// sanitizer report is a bug. Torch-free.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint/safetensors_header.h"
#include "fuzz_common.h"
#include "model/config.h"
#include "model/offsite_section.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(data, 0, size);
  const std::size_t json_size = nul ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - data) : size;

  nlohmann::json j = nlohmann::json::parse(text, text + json_size, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    try {
      const ot::ModelConfig c = ot::parse_model_config(j, "config.json");
      (void)ot::bundle_block_origin(j, c.num_layers, "config.json");
      (void)ot::bundle_num_original_layers(j, c.num_layers, "config.json");
      try {
        (void)ot::parse_model_config(ot::model_config_to_json(c), "config.json (written back)");
      } catch (const ot::Error& e) {
        std::fprintf(stderr, "fuzz_bundle: a config written back does not load: %s\n", e.what());
        std::abort();
      }
    } catch (const ot::Error& e) {
      ot::fuzz::rejected(e);
    }
  }
  if (nul) {
    try {
      (void)ot::parse_safetensors_header(text + json_size + 1, size - json_size - 1, "model.safetensors");
    } catch (const ot::Error& e) {
      ot::fuzz::rejected(e);
    }
  }
  return 0;
}
