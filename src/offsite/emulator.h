// offsite/emulator.h: the model owner's side of offsite-tuning. Splits a full model of n
// blocks into the adapter (bottom l and top r blocks) and the middle; builds the emulator
// from k chosen middle blocks (optionally repeated in place of dropped ones, CRaSh-style,
// and made lossier by magnitude pruning and uniform quantization); and assembles the
// bundle: embeddings + adapter + emulator + head, an ordinary reduced-depth model whose
// `block_origin` maps each block to its original index. Dropped blocks never enter it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/block_model.h"
#include "model/decoder_lm.h"
#include "model/vision_encoder.h"

namespace ot {

struct EmulatorOptions {
  int64_t bottom = 2;           // l adapter blocks at the bottom
  int64_t top = 2;              // r adapter blocks at the top
  int64_t layers = 0;           // k emulator blocks (0: keep all middle blocks)
  std::string strategy = "uniform";  // uniform | floor | cka | an index list "0,3,5"
  bool repeat = false;          // fill dropped positions with the nearest kept block
  double prune_ratio = 0.0;     // magnitude pruning of emulator weight matrices, [0, 1)
  int quantize_bits = 0;        // uniform per-tensor quantization bits, 0 = off
  bool train_head = false;      // the adapter includes the final norm and LM head
  // Structured MLP channel pruning of the emulator blocks (offsite/channel_pruning.h).
  double prune_channels = 0.0;             // share of each emulator block's channels removed, [0, 1)
  std::string channel_score = "magnitude";  // magnitude | gradot
  double gradot_lambda = 0.0;              // gradot: weight of the loss-gap (privacy) term
  // Rank compression of the emulator's attention projections (offsite/rank_compression.h):
  // a rank >= 1 or an energy fraction in (0, 1); 0 = off.
  double svd = 0.0;
  // Layer replacement by harmonizers (offsite/layer_replacement.h): "" (off), a ratio in
  // (0, 1) of the emulator's blocks, or original block indices "5,7".
  std::string replace_layers;
  int64_t replace_group = 2;    // a ratio replaces int(ratio * g + 0.5) of every g blocks
  int64_t harmonizer_rank = 0;  // 0: model/harmonizer.h's default_harmonizer_rank
};

// Where the blocks of a bundle come from.
struct OffsiteLayout {
  int64_t num_original = 0;                // n
  int64_t bottom = 0, top = 0;             // l, r
  std::vector<int64_t> middle_kept;        // chosen middle indices, relative to the middle (0..m-1)
  std::vector<int64_t> block_origin;       // original index of every bundle block
  bool head = false;                       // the final norm and LM head belong to the adapter
  std::vector<int64_t> adapter_blocks() const;   // original indices of the adapter blocks
  bool is_adapter(int64_t original_index) const;
};

// Middle-block indices for strategies that need no activations (uniform, floor, list).
std::vector<int64_t> select_middle_blocks(int64_t m, int64_t k, const std::string& strategy);

// Builds the layout for n blocks; `middle_kept` from select_middle_blocks or CKA.
OffsiteLayout make_layout(int64_t n, const EmulatorOptions& o, const std::vector<int64_t>& middle_kept);

// A new block with the same weights as `src` (deep copy, same dtype/device).
std::shared_ptr<BlockBase> copy_block(const ModelConfig& cfg, BlockBase& src, int64_t layer_index);

// The paper's lossy compressors, applied in place to every weight matrix (dim > 1):
// prune zeroes |w| below the int(numel * ratio)-th smallest magnitude; quantize maps w to
// round((w - zp) / scale) * scale + zp with zp = (max + min) / 2, scale = (max - min) / (2^bits - 1).
void magnitude_prune(BlockBase& block, double ratio);
void quantize_uniform(BlockBase& block, int bits);

// Bundle = embeddings + adapter blocks + emulator blocks + head, sharing nothing with
// `full` (all tensors copied), a model of the same kind (decoder LM or vision encoder). Its
// config carries the `offsite` section (offsite_section) with `full`'s fingerprint.
std::shared_ptr<BlockModelImpl> build_bundle_module(BlockModelImpl& full, const OffsiteLayout& layout,
                                                    const EmulatorOptions& o);
DecoderLM build_bundle(DecoderLM& full, const OffsiteLayout& layout, const EmulatorOptions& o);
VisionEncoder build_bundle(VisionEncoder& full, const OffsiteLayout& layout, const EmulatorOptions& o);

// The `offsite` section written into a bundle's config.json.
nlohmann::json offsite_section(const OffsiteLayout& layout, const EmulatorOptions& o,
                               const std::string& fingerprint);
// Reads it back and checks it is one `ot emulator` can have written: format version, adapter
// split, kept middle blocks and the block map agree with each other and with the
// checkpoint's `bundle_blocks`. `source` names the file in errors.
OffsiteLayout layout_from_section(const nlohmann::json& section, int64_t bundle_blocks,
                                  const std::string& source);

// Identifies a full model: hash of its architecture and its input table (token embeddings,
// or a vision encoder's patch projection). Stored in bundles and adapters so plug-in refuses
// an adapter trained for a different model.
std::string model_fingerprint(BlockModelImpl& model);
// The same hash from a checkpoint's stored tensors (HF names), without building a model:
// a bundle's stored embedding table must give the fingerprint its `offsite` section claims.
std::string fingerprint_of(const ModelConfig& config, const StateDict& hf_tensors, const std::string& source);

}  // namespace ot
