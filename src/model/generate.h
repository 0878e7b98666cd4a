// model/generate.h: autoregressive decoding with a key/value cache: greedy (temperature
// 0) or sampled with temperature and nucleus (top-p) filtering from a seeded generator,
// so a given seed always produces the same continuation.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/decoder_lm.h"

namespace ot {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy (argmax)
  double top_p = 1.0;        // nucleus mass kept when sampling, in (0, 1]
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these
  bool use_cache = true;          // false recomputes the whole prefix every step (reference)
};

// Continues `prompt` (non-empty ids) and returns only the new ids. `on_token` (optional)
// sees each new id as soon as it is chosen (streaming output).
std::vector<int64_t> generate(DecoderLM& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts,
                              const std::function<void(int64_t)>& on_token = {});

// Picks the next id from logits (V) per the options (greedy when temperature == 0).
int64_t sample_next(const at::Tensor& logits, const GenerateOptions& opts, at::Generator& gen);

}  // namespace ot
