// model/flops.cpp: see flops.h.
#include "model/flops.h"

#include <algorithm>

#include "model/harmonizer.h"

namespace ot {

namespace {

struct PartFlops {
  double forward = 0.0;       // per token
  double trained_matrix = 0.0;  // forward FLOPs of the matrices that train (their weight gradients cost as much)
  bool trains = false;
};

PartFlops matrices(const std::vector<at::Tensor>& params) {
  PartFlops f;
  for (const auto& p : params) {
    if (p.dim() != 2) continue;
    f.forward += 2.0 * double(p.numel());
    if (p.requires_grad()) f.trained_matrix += 2.0 * double(p.numel());
  }
  for (const auto& p : params) f.trains = f.trains || p.requires_grad();
  return f;
}

// Parts in forward order: blocks, then the head (final norm + output layer).
std::vector<PartFlops> parts(BlockModelImpl& model, int64_t seq_len) {
  std::vector<PartFlops> out;
  const ModelConfig& cfg = model.config();
  const double C = double(cfg.hidden_size);
  // Attention scores and the weighted sum: 4 * keys * (heads * head_dim) per token (Gemma's
  // head_dim need not be C / heads); a sliding-window block sees at most `sliding_window` keys.
  const double attn_width = is_rope_decoder(cfg.arch) ? double(cfg.num_heads * cfg.head_dim) : C;
  for (int64_t i = 0; i < model.num_blocks(); ++i) {
    PartFlops b = matrices(model.block(i).parameters());
    if (as_harmonizer(model.block(i)) != nullptr) {  // no attention: its two matrices are all
      out.push_back(b);
      continue;
    }
    int64_t keys = seq_len;
    if (cfg.layer_slides(model.block_origin().at(static_cast<size_t>(i)))) keys = std::min(keys, cfg.sliding_window);
    b.forward += 4.0 * double(keys) * attn_width;
    out.push_back(b);
  }
  PartFlops head;
  bool head_trains = false;
  for (const auto& item : model.named_parameters(true)) {
    const std::string& k = item.key();
    const bool in_block = k.rfind("blocks.", 0) == 0;
    if (!in_block && item.value().requires_grad()) head_trains = true;
    // A vision encoder's output layers see one token per image (the class token or a pool).
    if (is_vision(cfg.arch) && BlockModelImpl::is_output_layer_param(k) && item.value().dim() == 2)
      head.forward += 2.0 * double(item.value().numel()) / double(seq_len);
  }
  // A decoder's LM projection: its weight is lm_head's, or the (tied) token embedding's.
  if (!is_vision(cfg.arch)) head.forward = 2.0 * C * double(cfg.vocab_size);
  head.trains = head_trains;
  if (head_trains) head.trained_matrix = head.forward;
  out.push_back(head);
  return out;
}

}  // namespace

double forward_flops_per_token(BlockModelImpl& model, int64_t seq_len) {
  double f = 0.0;
  for (const auto& p : parts(model, seq_len)) f += p.forward;
  return f;
}

double training_flops_per_token(BlockModelImpl& model, int64_t seq_len) {
  std::vector<PartFlops> ps = parts(model, seq_len);
  // Embeddings that train need activation gradients through every block.
  bool embeddings_train = false;
  for (const auto& item : model.named_parameters(true))
    if (item.key().rfind("embed.", 0) == 0 && item.value().requires_grad()) embeddings_train = true;
  size_t lowest = ps.size();
  if (embeddings_train) lowest = 0;
  for (size_t i = 0; i < ps.size() && lowest == ps.size(); ++i)
    if (ps[i].trains) lowest = i;
  double f = 0.0;
  for (size_t i = 0; i < ps.size(); ++i) {
    f += ps[i].forward;
    if (i >= lowest) f += ps[i].forward;  // activation gradients
    f += ps[i].trained_matrix;           // weight gradients
  }
  return f;
}

}  // namespace ot
