// model/peft.cpp: see peft.h.
#include "model/peft.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "model/layers.h"
#include "util/error.h"

namespace ot {

std::vector<std::string> default_lora_targets(Arch arch) {
  switch (arch) {
    case Arch::kOPT: return {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
    case Arch::kGPT2: return {"c_attn", "c_proj", "c_fc"};
    case Arch::kBloom: return {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"};
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kGemma: return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    // Phi-3's fused projections: LoRA on the whole fused Linear, as PEFT targets it.
    case Arch::kPhi3: return {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
    case Arch::kViT: return {"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"};
    case Arch::kCLIPVision: return {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
  }
  return {};
}

std::vector<std::string> default_adapter_targets(Arch arch) {
  switch (arch) {
    case Arch::kOPT: return {"out_proj", "fc2"};
    case Arch::kGPT2: return {"attn.c_proj", "mlp.c_proj"};
    case Arch::kBloom: return {"self_attention.dense", "dense_4h_to_h"};
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kGemma:
    case Arch::kPhi3: return {"o_proj", "down_proj"};
    case Arch::kViT: return {"attention.output.dense", "output.dense"};
    case Arch::kCLIPVision: return {"out_proj", "fc2"};
  }
  return {};
}

namespace {
// A module path inside a block ("self_attn.q_proj") matches a target equal to the path
// or to its last components ("q_proj", "attn.c_proj").
bool matches(const std::string& path, const std::string& target) {
  if (path == target) return true;
  return path.size() > target.size() && path.compare(path.size() - target.size(), target.size(), target) == 0 &&
         path[path.size() - target.size() - 1] == '.';
}

}  // namespace

bool is_peft_param(const std::string& name) {
  for (const char* p : {"lora_A", "lora_B", "adapter_down", "adapter_down_bias", "adapter_up", "adapter_up_bias"}) {
    const std::string s = p;
    if (name == s || (name.size() > s.size() && name.compare(name.size() - s.size() - 1, s.size() + 1, "." + s) == 0))
      return true;
  }
  return false;
}

void apply_peft(BlockModelImpl& model, const std::vector<int64_t>& positions, const PeftOptions& o) {
  if (o.method == "none" || o.method == "bitfit") return;
  OT_REQUIRE(o.method == "lora" || o.method == "adapter", "peft: method '", o.method,
             "' is not supported (expected none, lora, bitfit or adapter)");
  auto targets = o.method == "lora" ? (o.lora_targets.empty() ? default_lora_targets(model.config().arch) : o.lora_targets)
                                    : (o.adapter_targets.empty() ? default_adapter_targets(model.config().arch) : o.adapter_targets);
  std::set<std::string> used;
  for (int64_t pos : positions) {
    for (auto& item : model.block(pos).named_modules("", false)) {
      auto* proj = dynamic_cast<nn::ProjectionBase*>(item.value().get());
      if (!proj) continue;
      for (const auto& t : targets) {
        if (!matches(item.key(), t)) continue;
        used.insert(t);
        if (o.method == "lora") proj->add_lora(o.lora_rank, o.lora_alpha, o.lora_dropout);
        else proj->add_bottleneck(o.adapter_size, o.adapter_dropout);
        break;
      }
    }
  }
  if (!positions.empty())
    for (const auto& t : targets)
      OT_REQUIRE(used.count(t), "peft: target module '", t, "' does not exist in ", arch_name(model.config().arch),
                 " blocks");
}

int64_t set_trainable(BlockModelImpl& model, const std::vector<int64_t>& positions, bool train_head,
                      const PeftOptions& o) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  int64_t n = 0;
  for (int64_t pos : positions) {
    OT_REQUIRE(pos >= 0 && pos < model.num_blocks(), "trainable block ", pos, " outside the model's ",
               model.num_blocks(), " blocks");
    for (auto& item : model.block(pos).named_parameters(true)) {
      bool on = o.method == "none" || (o.method == "bitfit" ? item.value().dim() == 1 : is_peft_param(item.key()));
      item.value().set_requires_grad(on);
    }
  }
  if (train_head)
    for (auto& item : model.named_parameters(true))
      if (BlockModelImpl::is_head_param(item.key())) item.value().set_requires_grad(true);
  for (auto& p : model.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

void merge_peft(BlockModelImpl& model) {
  for (auto& item : model.named_modules("", false))
    if (auto* proj = dynamic_cast<nn::ProjectionBase*>(item.value().get())) proj->merge_lora();
}

nlohmann::json peft_to_json(const PeftOptions& o) {
  nlohmann::json j = {{"method", o.method}};
  if (o.method == "lora")
    j.update({{"rank", o.lora_rank}, {"alpha", o.lora_alpha}, {"dropout", o.lora_dropout}, {"targets", o.lora_targets}});
  if (o.method == "adapter")
    j.update({{"size", o.adapter_size}, {"dropout", o.adapter_dropout}, {"targets", o.adapter_targets}});
  return j;
}

PeftOptions peft_from_json(const nlohmann::json& j, const std::string& source) {
  PeftOptions o;
  try {
    o.method = j.value("method", "none");
    if (o.method == "lora") {
      o.lora_rank = j.value("rank", o.lora_rank);
      o.lora_alpha = j.value("alpha", o.lora_alpha);
      o.lora_dropout = j.value("dropout", o.lora_dropout);
      o.lora_targets = j.value("targets", std::vector<std::string>{});
    } else if (o.method == "adapter") {
      o.adapter_size = j.value("size", o.adapter_size);
      o.adapter_dropout = j.value("dropout", o.adapter_dropout);
      o.adapter_targets = j.value("targets", std::vector<std::string>{});
    }
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": malformed PEFT description (", e.what(), ")");
  }
  OT_REQUIRE(o.method == "none" || o.method == "lora" || o.method == "bitfit" || o.method == "adapter", source,
             ": unknown PEFT method '", o.method, "'");
  return o;
}

}  // namespace ot
