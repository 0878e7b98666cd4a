// offsite/adapter.cpp: see adapter.h.
#include "offsite/adapter.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/safetensors.h"
#include "model/config.h"
#include "model/load.h"
#include "model/offsite_section.h"
#include "model/peft.h"
#include "offsite/bundle_config.h"
#include "offsite/emulator.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {
// "blocks.<pos>.<rest>" -> (pos, rest); false for non-block names.
bool split_block_name(const std::string& internal, int64_t& pos, std::string& rest) {
  if (internal.rfind("blocks.", 0) != 0) return false;
  size_t dot = internal.find('.', 7);
  pos = std::stoll(internal.substr(7, dot - 7));
  rest = internal.substr(dot + 1);
  return true;
}
}  // namespace

std::string original_hf_name(BlockModelImpl& model, const std::string& internal) {
  int64_t pos;
  std::string rest;
  if (split_block_name(internal, pos, rest))
    return model.hf_name("blocks." + std::to_string(model.block_origin().at(static_cast<size_t>(pos))) + "." + rest);
  return model.hf_name(internal);
}

Adapter extract_adapter(BlockModelImpl& model, const std::vector<int64_t>& blocks, bool include_head,
                        const std::string& fingerprint, int64_t num_original_layers,
                        const nlohmann::json& extra) {
  torch::NoGradGuard ng;
  std::set<int64_t> wanted(blocks.begin(), blocks.end());
  Adapter a;
  for (const auto& p : model.named_parameters(true)) {
    int64_t pos;
    std::string rest;
    bool keep = false;
    if (split_block_name(p.key(), pos, rest)) {
      keep = wanted.count(model.block_origin().at(static_cast<size_t>(pos))) > 0;
    } else {
      keep = include_head && BlockModelImpl::is_head_param(p.key());
    }
    if (keep) a.tensors[original_hf_name(model, p.key())] = p.value().detach().to(torch::kCPU).contiguous();
  }
  a.config = extra;
  a.config["format"] = "offsite-adapter";
  a.config["format_version"] = 1;
  a.config["model_type"] = arch_name(model.config().arch);
  a.config["num_original_layers"] = num_original_layers;
  a.config["blocks"] = std::vector<int64_t>(wanted.begin(), wanted.end());
  a.config["includes_head"] = include_head;
  a.config["fingerprint"] = fingerprint;
  return a;
}

void save_adapter(const Adapter& a, const std::string& dir,
                  const std::function<void(const std::string& tmp_dir)>& also) {
  write_dir_atomically(dir, [&](const std::string& tmp) {
    save_safetensors(path_join(tmp, kAdapterTensorsFile), a.tensors);
    write_text_file_atomically(path_join(tmp, kAdapterConfigFile), a.config.dump(2) + "\n");
    if (also) also(tmp);
  });
}

Adapter load_adapter(const std::string& dir) {
  OT_REQUIRE(dir_exists(dir), dir, ": adapter directory does not exist");
  Adapter a;
  a.config_file = kAdapterConfigFile;
  std::string cfg_path = path_join(dir, kAdapterConfigFile);
  if (!file_exists(cfg_path)) {
    // An adapter written before the offsite metadata had its own name, or a PEFT adapter.
    const std::string legacy = path_join(dir, kLegacyAdapterConfigFile);
    OT_REQUIRE(file_exists(legacy), cfg_path, ": missing (expected an adapter written by `ot finetune`)");
    nlohmann::json probe = nlohmann::json::parse(read_text_file(legacy), nullptr, /*allow_exceptions=*/false);
    OT_REQUIRE(!is_peft_config(probe), legacy, ": a PEFT adapter config, not an offsite adapter's ", kAdapterConfigFile,
               " (plug a PEFT LoRA adapter in with `ot plugin --peft ", dir, "`)");
    cfg_path = legacy;
    a.config_file = kLegacyAdapterConfigFile;
  }
  const std::string st_path = path_join(dir, kAdapterTensorsFile);
  OT_REQUIRE(file_exists(st_path), st_path, ": missing (expected an adapter written by `ot finetune`)");
  a.config = parse_adapter_config(read_text_file(cfg_path), cfg_path);
  auto f = SafetensorsFile::open(st_path);
  for (const auto& kv : f.all()) a.tensors[kv.first] = kv.second.clone();
  return a;
}

namespace {

std::string list_str(const std::set<int64_t>& v) {
  std::string s = "[";
  for (int64_t b : v) s += (s.size() > 1 ? ", " : "") + std::to_string(b);
  return s + "]";
}

std::string shape_str(at::IntArrayRef v) {
  std::string s = "[";
  for (int64_t d : v) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + "]";
}

// The parameter names inside one block ("fc1.weight"), without PEFT additions.
std::vector<std::string> block_param_names(BlockBase& block) {
  std::vector<std::string> rest;
  for (const auto& item : block.named_parameters(true))
    if (!is_peft_param(item.key())) rest.push_back(item.key());
  return rest;
}

// What the adapter's config claims, each claim already checked against `issued`.
struct AdapterClaim {
  std::set<int64_t> blocks;
  bool head = false;
  std::string peft = "none";
};

AdapterClaim check_config(const Adapter& a, const IssuedAdapter& is, AdapterTarget target, const std::string& src) {
  const std::string cfg = path_join(src, a.config_file);
  const nlohmann::json& c = a.config;
  AdapterClaim claim;
  std::set<int64_t> permitted, adapter_blocks;
  for (const auto& kv : is.tensors)
    if (kv.second.block >= 0) {
      if (kv.second.adapter) adapter_blocks.insert(kv.second.block);
      if (kv.second.adapter || (target == AdapterTarget::kBundle && c.value("trainable", "adapter") != "adapter"))
        permitted.insert(kv.second.block);
    }
  try {
    OT_REQUIRE(c.value("format_version", int64_t{0}) == 1, cfg, ": format_version ", c.value("format_version", nlohmann::json()).dump(),
               " is not one this version reads (1)");
    OT_REQUIRE(c.at("model_type").get<std::string>() == is.model_type, cfg, ": adapter is for a ",
               c.at("model_type").get<std::string>(), " model but the bundle ", is.source, " is ", is.model_type);
    OT_REQUIRE(c.at("num_original_layers").get<int64_t>() == is.layout.num_original, cfg, ": adapter is for a ",
               c.at("num_original_layers").dump(), "-block model but the bundle ", is.source, " was cut from ",
               is.layout.num_original, " blocks");
    OT_REQUIRE(c.at("fingerprint").get<std::string>() == is.fingerprint, cfg, ": fingerprint ",
               c.at("fingerprint").get<std::string>(), " is not the bundle's (", is.fingerprint, ", ", is.source,
               "): the adapter was not trained on this bundle's model");
    for (int64_t b : c.at("blocks").get<std::vector<int64_t>>()) {
      OT_REQUIRE(claim.blocks.insert(b).second, cfg, ": block ", b, " is listed twice");
      OT_REQUIRE(permitted.count(b), cfg, ": block ", b, " is not an adapter block of the bundle ", is.source,
                 " (adapter blocks ", list_str(adapter_blocks), ")");
    }
    claim.head = c.value("includes_head", false);
    if (c.contains("peft")) claim.peft = peft_from_json(c["peft"], cfg).method;
  } catch (const nlohmann::json::exception& e) {
    fail(cfg, ": malformed (", e.what(), ")");
  }
  OT_REQUIRE(!claim.blocks.empty() || claim.head, cfg, ": lists no blocks and no head: nothing to plug in");
  OT_REQUIRE(!claim.head || is.layout.head, cfg, ": claims the head, but the bundle ", is.source,
             " did not make the head trainable (the model owner issues it with `ot emulator --train-head`)");
  return claim;
}

// The tensors of `model` under the names an adapter uses (original HF names).
std::map<std::string, at::Tensor> named_targets(BlockModelImpl& model, bool by_origin) {
  std::map<std::string, at::Tensor> by_name;
  for (auto& p : model.named_parameters(true))
    by_name[by_origin ? original_hf_name(model, p.key()) : model.hf_name(p.key())] = p.value();
  return by_name;
}

// Checks every tensor of `a` (names, dtypes, shapes, values) and that the claimed blocks are
// complete. `peft_targets`: bottleneck parameters of claimed blocks in the target model
// (empty when the check runs without one).
void check_tensors(const Adapter& a, const IssuedAdapter& is, const AdapterClaim& claim, AdapterTarget target,
                   const std::string& src, const std::map<std::string, at::Tensor>* peft_targets) {
  const std::string st = path_join(src, kAdapterTensorsFile);
  const std::string& cfg = a.config_file;
  std::set<int64_t> adapter_blocks;
  for (const auto& kv : is.tensors)
    if (kv.second.adapter && kv.second.block >= 0) adapter_blocks.insert(kv.second.block);
  const std::string issued_str = "the bundle " + is.source + " issued adapter blocks " + list_str(adapter_blocks) +
                                 (is.layout.head ? " and the head" : ", not the head");
  for (const auto& kv : a.tensors) {
    const std::string& name = kv.first;
    const at::Tensor& t = kv.second;
    auto it = is.tensors.find(name);
    if (it == is.tensors.end()) {
      const bool peft_ok = claim.peft == "adapter" && is_peft_param(name) && claim.blocks.count(is.block_of(name)) &&
                           (peft_targets == nullptr || peft_targets->count(name));
      OT_REQUIRE(peft_ok, st, ": tensor '", name, "' is not part of what ", issued_str, ": refused");
      if (peft_targets) {
        const at::Tensor& dst = peft_targets->at(name);
        OT_REQUIRE(t.sizes() == dst.sizes(), st, ": tensor '", name, "' has shape ", shape_str(t.sizes()),
                   " but its bottleneck module's is ", shape_str(dst.sizes()));
      }
      OT_REQUIRE(t.is_floating_point(), st, ": tensor '", name, "' is not floating point (", t.scalar_type(), ")");
    } else {
      const IssuedTensor& spec = it->second;
      if (spec.block >= 0) {
        const bool permitted = spec.adapter || (target == AdapterTarget::kBundle && claim.blocks.count(spec.block));
        OT_REQUIRE(permitted, st, ": tensor '", name, "' belongs to block ", spec.block,
                   ", which is not an adapter block (", issued_str, "): refused");
        OT_REQUIRE(claim.blocks.count(spec.block), st, ": tensor '", name, "' belongs to block ", spec.block,
                   ", which ", cfg, " does not list (blocks ", list_str(claim.blocks), ")");
      } else {
        OT_REQUIRE(spec.adapter, st, ": tensor '", name, "' is the model's head, which ", issued_str,
                   " does not make trainable: refused");
        OT_REQUIRE(claim.head, st, ": tensor '", name, "' is the head's, but ", cfg, " says includes_head false");
      }
      OT_REQUIRE(t.scalar_type() == spec.dtype, st, ": tensor '", name, "' is ", t.scalar_type(),
                 " but the bundle issued it as ", spec.dtype);
      OT_REQUIRE(t.sizes() == at::IntArrayRef(spec.shape), st, ": tensor '", name, "' has shape ",
                 shape_str(t.sizes()), " but the bundle issued ", shape_str(spec.shape));
    }
    OT_REQUIRE(t.numel() == 0 || torch::isfinite(t).all().item<bool>(), st, ": tensor '", name,
               "' holds non-finite values (NaN or Inf): refused");
  }
  for (const auto& kv : is.tensors) {
    const bool claimed = kv.second.block >= 0 ? claim.blocks.count(kv.second.block) > 0 : (claim.head && kv.second.adapter);
    OT_REQUIRE(!claimed || a.tensors.count(kv.first), st, ": tensor '", kv.first, "' is missing (",
               kv.second.block >= 0 ? "block " + std::to_string(kv.second.block) + ", which " + cfg + " lists"
                                    : "the head, which " + cfg + " claims",
               ")");
  }
  if (peft_targets)
    for (const auto& kv : *peft_targets)
      OT_REQUIRE(a.tensors.count(kv.first), st, ": bottleneck tensor '", kv.first, "' is missing");
}

// Bottleneck adapters are extra modules, not weight deltas: the receiving model needs them
// before their tensors can be assigned. Adds them to the claimed blocks; returns their
// bundle or model positions.
std::vector<int64_t> add_bottleneck_modules(BlockModelImpl& model, const Adapter& a, const AdapterClaim& claim,
                                            const std::string& source) {
  if (claim.peft != "adapter") return {};
  PeftOptions po = peft_from_json(a.config["peft"], source);
  std::vector<int64_t> positions;
  for (int64_t j = 0; j < model.num_blocks(); ++j)
    if (claim.blocks.count(model.block_origin()[static_cast<size_t>(j)])) positions.push_back(j);
  apply_peft(model, positions, po);
  return positions;
}

void check_and_assign(BlockModelImpl& model, const Adapter& a, const std::string& source, const IssuedAdapter& is,
                      AdapterTarget target) {
  torch::NoGradGuard ng;
  AdapterClaim claim = check_config(a, is, target, source);
  // The tensors are checked once, after the bottleneck modules exist (their shapes are the
  // model's); a refused adapter leaves a model that the caller discards with the error.
  const bool by_origin = target == AdapterTarget::kBundle;
  auto positions = add_bottleneck_modules(model, a, claim, source);
  if (target == AdapterTarget::kFullModel && !positions.empty()) {
    nlohmann::json pj = a.config["peft"];
    pj["blocks"] = positions;
    model.set_config_entry(kPeftConfigKey, pj);
  }
  auto by_name = named_targets(model, by_origin);
  std::map<std::string, at::Tensor> peft_targets;  // the bottleneck parameters just added
  const std::set<int64_t> added(positions.begin(), positions.end());
  for (auto& p : model.named_parameters(true)) {
    int64_t pos;
    std::string rest;
    if (split_block_name(p.key(), pos, rest) && added.count(pos) && is_peft_param(rest))
      peft_targets.emplace(original_hf_name(model, p.key()), p.value());
  }
  check_tensors(a, is, claim, target, source, &peft_targets);
  for (const auto& kv : a.tensors) {
    auto it = by_name.find(kv.first);
    OT_REQUIRE(it != by_name.end(), source, ": adapter tensor '", kv.first,
               "' has no counterpart in the model (the model is not the one the bundle was cut from)");
    OT_REQUIRE(it->second.sizes() == kv.second.sizes(), source, ": adapter tensor '", kv.first, "' has shape ",
               shape_str(kv.second.sizes()), " but the model's is ", shape_str(it->second.sizes()));
    it->second.copy_(kv.second);
  }
}

}  // namespace

IssuedAdapter read_issued_adapter(const std::string& dir, BlockModelImpl& namer) {
  const std::string cfg_path = path_join(dir, "config.json");
  const nlohmann::json cfg = load_hf_config(dir);
  OT_REQUIRE(is_offsite_bundle(cfg), cfg_path, ": not an offsite bundle (no \"offsite\" section; make one with `ot emulator`)");
  const ModelConfig bc = parse_model_config(cfg, cfg_path);
  IssuedAdapter is;
  is.source = dir;
  is.model_type = arch_name(bc.arch);
  OT_REQUIRE(bc.arch == namer.config().arch, cfg_path, ": the bundle is a ", is.model_type, " model, not ",
             arch_name(namer.config().arch));
  is.layout = layout_from_section(cfg["offsite"], bc.num_layers, cfg_path);
  is.fingerprint = cfg["offsite"]["fingerprint"].get<std::string>();

  // Every stored tensor must be one the block map and the architecture account for.
  const StateDict stored = load_hf_weights(dir);
  std::set<std::string> expected;
  auto spec_of = [&](const std::string& stored_name) {
    auto it = stored.find(stored_name);
    OT_REQUIRE(it != stored.end(), dir, ": the bundle's weights lack '", stored_name,
               "', which its config requires (the bundle was altered or damaged)");
    expected.insert(stored_name);
    IssuedTensor t;
    t.dtype = it->second.scalar_type();
    t.shape = it->second.sizes().vec();
    return t;
  };
  // Each block's names as the bundle's config shapes it (rank-compressed emulator blocks
  // store factors in place of some weights); parameters stay unallocated placeholders.
  std::shared_ptr<BlockModelImpl> shaped;
  if (is_vision(bc.arch)) shaped = std::make_shared<VisionEncoderImpl>(bc);
  else shaped = std::make_shared<DecoderLMImpl>(bc);
  shape_from_config(*shaped, cfg, dir);
  for (size_t j = 0; j < is.layout.block_origin.size(); ++j) {
    const int64_t o = is.layout.block_origin[j];
    for (const std::string& r : block_param_names(shaped->block(static_cast<int64_t>(j)))) {
      IssuedTensor t = spec_of(namer.hf_name("blocks." + std::to_string(j) + "." + r));
      t.block = o;
      t.adapter = is.layout.is_adapter(o);
      const std::string name = namer.hf_name("blocks." + std::to_string(o) + "." + r);
      is.block_prefix.emplace(o, name.substr(0, name.size() - r.size()));
      is.tensors.emplace(namer.hf_name("blocks." + std::to_string(o) + "." + r), t);
    }
  }
  for (const auto& item : namer.named_parameters(true)) {
    const std::string& k = item.key();
    if (k.rfind("blocks.", 0) == 0 || is_peft_param(k)) continue;
    IssuedTensor t = spec_of(namer.hf_name(k));
    if (BlockModelImpl::is_head_param(k)) {
      t.adapter = is.layout.head;
      is.tensors.emplace(namer.hf_name(k), t);
    }
  }
  for (const auto& kv : stored)
    OT_REQUIRE(expected.count(kv.first) || (kv.first == "lm_head.weight" && bc.tie_word_embeddings), dir,
               ": the bundle holds tensor '", kv.first, "', which its block map does not account for "
               "(the bundle was altered or damaged)");
  const std::string fp = fingerprint_of(bc, stored, dir);
  OT_REQUIRE(fp == is.fingerprint, dir, ": the bundle's token table gives fingerprint ", fp, " but its offsite section records ",
             is.fingerprint, " (the bundle was altered or damaged)");
  return is;
}

void check_adapter(const Adapter& a, const IssuedAdapter& is, AdapterTarget target, const std::string& source) {
  torch::NoGradGuard ng;
  AdapterClaim claim = check_config(a, is, target, source);
  check_tensors(a, is, claim, target, source, nullptr);
}

void plug_in(BlockModelImpl& full, const Adapter& a, const std::string& source, const IssuedAdapter& issued) {
  OT_REQUIRE(full.num_blocks() == issued.layout.num_original, source, ": the model has ", full.num_blocks(),
             " blocks but the bundle ", issued.source, " was cut from ", issued.layout.num_original);
  OT_REQUIRE(arch_name(full.config().arch) == issued.model_type, source, ": the model is ",
             arch_name(full.config().arch), " but the bundle ", issued.source, " is ", issued.model_type);
  const std::string fp = model_fingerprint(full);
  OT_REQUIRE(fp == issued.fingerprint, source, ": the model's fingerprint ", fp, " is not the one the bundle ",
             issued.source, " was cut from (", issued.fingerprint, ")");
  check_and_assign(full, a, source, issued, AdapterTarget::kFullModel);
}

void load_adapter_into(BlockModelImpl& bundle, const Adapter& a, const std::string& source, const IssuedAdapter& issued) {
  OT_REQUIRE(bundle.block_origin() == issued.layout.block_origin, source, ": the model's block map is not the bundle ",
             issued.source, "'s");
  check_and_assign(bundle, a, source, issued, AdapterTarget::kBundle);
}

int64_t IssuedAdapter::block_of(const std::string& name) const {
  for (const auto& kv : block_prefix)
    if (name.rfind(kv.second, 0) == 0) return kv.first;  // prefixes end in '.', so at most one matches
  return -1;
}

void conform_to_issued(Adapter& a, const IssuedAdapter& issued) {
  std::map<int64_t, c10::ScalarType> block_dtype;
  for (const auto& kv : issued.tensors) block_dtype.emplace(kv.second.block, kv.second.dtype);
  for (auto& kv : a.tensors) {
    auto it = issued.tensors.find(kv.first);
    if (it != issued.tensors.end()) {
      kv.second = kv.second.to(it->second.dtype);
    } else if (is_peft_param(kv.first)) {
      auto b = block_dtype.find(issued.block_of(kv.first));
      if (b != block_dtype.end()) kv.second = kv.second.to(b->second);
    }
  }
}

void adopt_issued_classifier(BlockModelImpl& full, const std::string& bundle_dir) {
  auto* encoder = dynamic_cast<VisionEncoderImpl*>(&full);
  if (!encoder) return;
  const std::string cfg_path = path_join(bundle_dir, "config.json");
  const ModelConfig bc = parse_model_config(load_hf_config(bundle_dir), cfg_path);
  if (bc.num_labels == 0 || (encoder->has_classifier() && encoder->config().num_labels == bc.num_labels)) return;
  // The class names, in index order, as the bundle's id2label gives them.
  std::vector<std::string> names(static_cast<size_t>(bc.num_labels));
  const nlohmann::json* id2label = bc.raw.contains("id2label") ? &bc.raw["id2label"] : nullptr;
  for (int64_t i = 0; i < bc.num_labels; ++i) {
    const std::string key = std::to_string(i);
    names[static_cast<size_t>(i)] =
        id2label && id2label->contains(key) && (*id2label)[key].is_string() ? (*id2label)[key].get<std::string>() : key;
  }
  encoder->set_classifier(names, 0.0);
  // The weights the bundle issued (what the data owner started from): an adapter that does
  // not return the head leaves them as they were issued.
  const StateDict stored = load_hf_weights(bundle_dir);
  torch::NoGradGuard no_grad;
  for (const auto& item : encoder->named_parameters(true)) {
    if (item.key().rfind("classifier.", 0) != 0) continue;
    const auto it = stored.find(encoder->hf_name(item.key()));
    OT_REQUIRE(it != stored.end() && it->second.sizes() == item.value().sizes(), bundle_dir,
               ": the bundle's config names ", bc.num_labels, " classes, but its weights lack a matching '",
               encoder->hf_name(item.key()), "' (the bundle was altered or damaged)");
    item.value().copy_(it->second);
  }
}

void attach_adapter(BlockModelImpl& model, const std::string& model_dir, const std::string& adapter_dir,
                    const std::string& bundle_dir, const std::string& missing_bundle) {
  Adapter a = load_adapter(adapter_dir);
  if (is_offsite_bundle(model.config())) {
    load_adapter_into(model, a, adapter_dir, read_issued_adapter(model_dir, model));
  } else {
    OT_REQUIRE(!bundle_dir.empty(), missing_bundle);
    adopt_issued_classifier(model, bundle_dir);
    plug_in(model, a, adapter_dir, read_issued_adapter(bundle_dir, model));
  }
}

}  // namespace ot
