// offsite/block_input.cpp: see block_input.h.
#include "offsite/block_input.h"

#include "model/decoder_lm.h"
#include "model/vision_encoder.h"
#include "util/error.h"

namespace ot {

at::Tensor embed_batch(BlockModelImpl& model, const Batch& b, AttentionContext& ctx, const std::string& what) {
  if (auto* lm = dynamic_cast<DecoderLMImpl*>(&model)) {
    OT_REQUIRE(b.input_ids.defined(), what, ": a language model takes token batches, got images");
    ctx = lm->make_context(b.input_ids, b.attention_mask, {}, 0);
    return lm->embed(b.input_ids, ctx);
  }
  auto* encoder = dynamic_cast<VisionEncoderImpl*>(&model);
  TORCH_INTERNAL_ASSERT(encoder, what, ": a model that is neither a decoder nor a vision encoder");
  OT_REQUIRE(b.pixel_values.defined(), what, ": a vision encoder takes image batches, got tokens");
  encoder->check_pixels(b.pixel_values, false, what);
  ctx = encoder->make_context();
  return encoder->embed(b.pixel_values);
}

}  // namespace ot
