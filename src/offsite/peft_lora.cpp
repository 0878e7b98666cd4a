// offsite/peft_lora.cpp: see peft_lora.h.
#include "offsite/peft_lora.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "checkpoint/safetensors.h"
#include "model/config.h"
#include "model/layers.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

// PEFT's prefix of every saved name: PeftModel.base_model (LoraModel) .model (the HF model).
constexpr const char* kPeftPrefix = "base_model.model.";
constexpr const char* kSuffixA = ".lora_A.weight";
constexpr const char* kSuffixB = ".lora_B.weight";

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// PEFT's match of a list entry: the module's full name equals it or ends in "." + it.
bool peft_matches(const std::string& module, const std::string& target) {
  return module == target || ends_with(module, "." + target);
}

// PEFT's layer index of a module name: the number after the last ".<name>." with digits
// following ("model.decoder.layers.3.fc1" -> 3); -1 when there is none.
int64_t peft_layer_index(const std::string& module) {
  static const std::regex re(R"(.*\.[^.]*\.(\d+)\..*)");
  std::smatch m;
  if (!std::regex_match(module, m, re)) return -1;
  return std::stoll(m[1].str());
}

std::string shape_str(at::IntArrayRef v) {
  std::string s = "[";
  for (int64_t d : v) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + "]";
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (std::string(".^$|()[]{}*+?\\").find(ch) != std::string::npos) out += '\\';
    out += ch;
  }
  return out;
}

// "blocks.<pos>.<rest>" -> the original model's name, via the model's block map.
std::string original_module_name(BlockModelImpl& model, int64_t pos, const std::string& rest) {
  return model.hf_name("blocks." + std::to_string(model.block_origin().at(static_cast<size_t>(pos))) + "." + rest);
}

struct Projection {
  std::string internal;  // "blocks.3.self_attn.q_proj"
  nn::ProjectionBase* proj = nullptr;
};

// The model's projections by HF module name (block i of the model is original block i).
std::map<std::string, Projection> projections_by_hf_name(BlockModelImpl& model) {
  std::map<std::string, Projection> out;
  for (auto& item : model.named_modules("", false))
    if (auto* p = dynamic_cast<nn::ProjectionBase*>(item.value().get()))
      out[model.hf_name(item.key())] = Projection{item.key(), p};
  return out;
}

}  // namespace

PeftLora extract_peft_lora(BlockModelImpl& model, const std::vector<int64_t>& positions, const PeftOptions& o,
                           const std::string& base_model) {
  torch::NoGradGuard ng;
  PeftLora out;
  std::vector<int64_t> layers;
  std::set<std::string> lora_rel, all_rel;  // module paths inside a block, with and without LoRA
  std::vector<std::string> lora_full;       // full names of the LoRA modules
  bool conv1d = false, linear = false;
  for (int64_t pos : positions) {
    layers.push_back(model.block_origin().at(static_cast<size_t>(pos)));
    for (auto& item : model.block(pos).named_modules("", false)) {
      auto* proj = dynamic_cast<nn::ProjectionBase*>(item.value().get());
      if (!proj) continue;
      all_rel.insert(item.key());
      if (!proj->has_lora()) continue;
      const std::string module = original_module_name(model, pos, item.key());
      OT_REQUIRE(!proj->is_low_rank(), "peft export: module '", module,
                 "' is rank-compressed; PEFT's LoRA applies to dense weights only");
      (dynamic_cast<nn::Conv1DImpl*>(proj) ? conv1d : linear) = true;
      lora_rel.insert(item.key());
      lora_full.push_back(module);
      out.tensors[kPeftPrefix + module + kSuffixA] = proj->lora_A.detach().to(torch::kCPU).contiguous();
      out.tensors[kPeftPrefix + module + kSuffixB] = proj->lora_B.detach().to(torch::kCPU).contiguous();
    }
  }
  OT_REQUIRE(!lora_full.empty(), "peft export: the trained blocks carry no LoRA modules");
  // PEFT has one fan_in_fan_out for the whole adapter.
  OT_REQUIRE(!(conv1d && linear), "peft export: the LoRA modules mix Conv1D and Linear weights, "
             "which one PEFT config (fan_in_fan_out) cannot describe");

  // target_modules: each LoRA module's last name component where that selects exactly the
  // LoRA modules of a block, else its path inside the block; a regex of the full names where
  // even the paths would select more (one path the suffix of another's).
  std::set<std::string> targets;
  for (const std::string& rel : lora_rel) {
    const std::string last = rel.substr(rel.rfind('.') + 1);
    bool only_lora = true;
    for (const std::string& r : all_rel)
      if (peft_matches(r, last) && !lora_rel.count(r)) only_lora = false;
    targets.insert(only_lora ? last : rel);
  }
  bool exact = true;
  for (const std::string& r : all_rel) {
    bool hit = false;
    for (const std::string& t : targets) hit = hit || peft_matches(r, t);
    if (hit != (lora_rel.count(r) > 0)) exact = false;
  }
  nlohmann::json target_json;
  if (exact) {
    target_json = std::vector<std::string>(targets.begin(), targets.end());
  } else {
    std::string re;
    for (const std::string& m : lora_full) re += (re.empty() ? "" : "|") + regex_escape(m);
    target_json = "(?:" + re + ")";
  }

  nlohmann::json alpha = o.lora_alpha;
  if (std::floor(o.lora_alpha) == o.lora_alpha && std::fabs(o.lora_alpha) < 1e15)
    alpha = static_cast<int64_t>(o.lora_alpha);  // LoraConfig types it int
  out.config = {
      {"peft_type", "LORA"},
      {"task_type", is_vision(model.config().arch) ? nlohmann::json(nullptr) : nlohmann::json("CAUSAL_LM")},
      {"base_model_name_or_path", base_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(base_model)},
      {"revision", nullptr},
      {"inference_mode", true},
      {"r", o.lora_rank},
      {"lora_alpha", alpha},
      {"lora_dropout", o.lora_dropout},
      {"target_modules", target_json},
      {"bias", "none"},
      {"fan_in_fan_out", conv1d},
      {"modules_to_save", nullptr},
      {"init_lora_weights", true},
      {"layers_to_transform", layers},
      {"layers_pattern", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"use_rslora", false},
  };
  return out;
}

void save_peft_lora(const PeftLora& p, const std::string& dir) {
  save_safetensors(path_join(dir, kPeftTensorsFile), p.tensors);
  write_text_file_atomically(path_join(dir, kPeftConfigFile), p.config.dump(2) + "\n");
}

std::vector<PeftLoraDelta> read_peft_lora(BlockModelImpl& model, const std::string& dir) {
  torch::NoGradGuard ng;
  OT_REQUIRE(dir_exists(dir), dir, ": PEFT adapter directory does not exist");
  const std::string cfg_path = path_join(dir, kPeftConfigFile);
  const std::string st = path_join(dir, kPeftTensorsFile);
  OT_REQUIRE(file_exists(cfg_path), cfg_path, ": missing (expected a PEFT LoRA adapter, as PeftModel.save_pretrained writes it)");
  OT_REQUIRE(file_exists(st), st, ": missing (expected a PEFT LoRA adapter in safetensors form, as PeftModel.save_pretrained "
             "writes it by default)");
  const PeftLoraConfig cfg = parse_peft_lora_config(read_text_file(cfg_path), cfg_path);
  const auto projections = projections_by_hf_name(model);
  const std::string arch = arch_name(model.config().arch);

  auto targeted = [&](const std::string& module) {
    if (!cfg.target_regex.empty()) {
      try {
        return std::regex_match(module, std::regex(cfg.target_regex));
      } catch (const std::regex_error& e) {
        fail(cfg_path, ": key 'target_modules': not a regular expression (", e.what(), ")");
      }
    }
    for (const std::string& t : cfg.target_modules)
      if (peft_matches(module, t)) return true;
    return false;
  };
  for (const std::string& t : cfg.target_modules) {
    bool any = false;
    for (const auto& kv : projections) any = any || peft_matches(kv.first, t);
    OT_REQUIRE(any, cfg_path, ": key 'target_modules': '", t, "' names no projection of the ", arch, " model");
  }
  const std::set<int64_t> layers(cfg.layers_to_transform.begin(), cfg.layers_to_transform.end());
  for (int64_t l : layers)
    OT_REQUIRE(l < model.num_blocks(), cfg_path, ": key 'layers_to_transform': layer ", l, " is outside the model's ",
               model.num_blocks(), " blocks");

  StateDict tensors = SafetensorsFile::open(st).all();
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> pairs;  // module -> (A, B)
  for (const auto& kv : tensors) {
    const std::string& name = kv.first;
    const bool is_a = ends_with(name, kSuffixA), is_b = ends_with(name, kSuffixB);
    OT_REQUIRE(name.rfind(kPeftPrefix, 0) == 0 && (is_a || is_b), st, ": tensor '", name,
               "' is not a LoRA factor (expected base_model.model.<module>", kSuffixA, " or ", kSuffixB, ")");
    const std::string module = name.substr(std::string(kPeftPrefix).size(),
                                           name.size() - std::string(kPeftPrefix).size() - std::string(kSuffixA).size());
    auto proj = projections.find(module);
    OT_REQUIRE(proj != projections.end(), st, ": tensor '", name, "': '", module, "' is not a projection of the ", arch,
               " model (", model.num_blocks(), " blocks)");
    OT_REQUIRE(targeted(module), st, ": tensor '", name, "': module '", module,
               "' is not among the target_modules of adapter_config.json");
    OT_REQUIRE(layers.empty() || layers.count(peft_layer_index(module)), st, ": tensor '", name, "': layer ",
               peft_layer_index(module), " is not in the layers_to_transform of adapter_config.json");
    const at::Tensor& t = kv.second;
    OT_REQUIRE(t.is_floating_point(), st, ": tensor '", name, "' is not floating point (", t.scalar_type(), ")");
    const nn::ProjectionBase& p = *proj->second.proj;
    OT_REQUIRE(!p.is_low_rank(), st, ": tensor '", name, "': module '", module, "' is rank-compressed in this model");
    const std::vector<int64_t> want = is_a ? std::vector<int64_t>{cfg.r, p.in_features}
                                           : std::vector<int64_t>{p.out_features, cfg.r};
    OT_REQUIRE(t.sizes() == at::IntArrayRef(want), st, ": tensor '", name, "' has shape ", shape_str(t.sizes()),
               " but expected ", shape_str(want), is_a ? " (r, the module's input width)" : " (the module's output width, r)");
    OT_REQUIRE(t.numel() == 0 || torch::isfinite(t).all().item<bool>(), st, ": tensor '", name,
               "' holds non-finite values (NaN or Inf): refused");
    (is_a ? pairs[module].first : pairs[module].second) = t;
  }
  OT_REQUIRE(!pairs.empty(), st, ": holds no LoRA factors");
  std::vector<PeftLoraDelta> out;
  const double scaling = cfg.scaling();
  for (const auto& kv : pairs) {
    const std::string a_name = kPeftPrefix + kv.first + kSuffixA, b_name = kPeftPrefix + kv.first + kSuffixB;
    OT_REQUIRE(kv.second.first.defined(), st, ": tensor '", a_name, "' is missing (its pair '", b_name, "' is there)");
    OT_REQUIRE(kv.second.second.defined(), st, ": tensor '", b_name, "' is missing (its pair '", a_name, "' is there)");
    const Projection& pr = projections.at(kv.first);
    PeftLoraDelta d;
    d.module = pr.internal;
    d.weight = kv.first + ".weight";
    d.tensor = a_name;
    // As merge_lora computes it, so that both paths give the same bits.
    d.delta = torch::mm(kv.second.second.to(torch::kFloat), kv.second.first.to(torch::kFloat)) * scaling;  // (out, in)
    if (pr.proj->output_dim() == 1) d.delta = d.delta.t();  // Conv1D stores (in, out)
    out.push_back(std::move(d));
  }
  return out;
}

void merge_peft_lora(BlockModelImpl& model, const std::string& dir) {
  torch::NoGradGuard ng;
  const auto deltas = read_peft_lora(model, dir);
  const auto projections = projections_by_hf_name(model);
  for (const PeftLoraDelta& d : deltas) {
    at::Tensor w = projections.at(d.weight.substr(0, d.weight.size() - 7)).proj->weight;
    w.copy_((w.to(torch::kFloat) + d.delta.to(w.device())).to(w.scalar_type()));
  }
}

Adapter plug_in_peft_lora(BlockModelImpl& full, const std::string& dir, const IssuedAdapter& issued) {
  torch::NoGradGuard ng;
  const std::string st = path_join(dir, kPeftTensorsFile);
  const auto deltas = read_peft_lora(full, dir);
  std::set<int64_t> adapter_blocks, blocks;
  for (const auto& kv : issued.tensors)
    if (kv.second.adapter && kv.second.block >= 0) adapter_blocks.insert(kv.second.block);
  std::string adapter_str;
  for (int64_t b : adapter_blocks) adapter_str += (adapter_str.empty() ? "" : ", ") + std::to_string(b);
  for (const PeftLoraDelta& d : deltas) {
    auto it = issued.tensors.find(d.weight);
    const int64_t block = it == issued.tensors.end() ? -1 : it->second.block;
    OT_REQUIRE(block >= 0 && it->second.adapter, st, ": tensor '", d.tensor, "' changes '", d.weight, "', ",
               block >= 0 ? "in block " + std::to_string(block) + ", which is not an adapter block"
                          : std::string("which is not a block weight the bundle issued"),
               " (the bundle ", issued.source, " issued adapter blocks [", adapter_str, "]): refused");
    blocks.insert(block);
  }
  // The changed blocks as an offsite adapter: the full model's own weights of those blocks
  // (the original ones the LoRA deltas apply to), the LoRA modules merged.
  Adapter a;
  const StateDict own = full.hf_state_dict();
  for (const auto& kv : issued.tensors)
    if (kv.second.block >= 0 && blocks.count(kv.second.block)) {
      auto w = own.find(kv.first);
      OT_REQUIRE(w != own.end(), dir, ": the model lacks '", kv.first, "', which the bundle ", issued.source, " issued");
      a.tensors[kv.first] = w->second.detach().to(torch::kCPU).clone();
    }
  for (const PeftLoraDelta& d : deltas) {
    at::Tensor& w = a.tensors.at(d.weight);
    w = (w.to(torch::kFloat) + d.delta).to(w.scalar_type());
  }
  a.config = {{"format", "offsite-adapter"},
              {"format_version", 1},
              {"model_type", issued.model_type},
              {"num_original_layers", issued.layout.num_original},
              {"blocks", std::vector<int64_t>(blocks.begin(), blocks.end())},
              {"includes_head", false},
              {"fingerprint", issued.fingerprint},
              {"peft_lora", dir}};
  a.config_file = kPeftConfigFile;
  conform_to_issued(a, issued);
  plug_in(full, a, dir, issued);
  return a;
}

}  // namespace ot
