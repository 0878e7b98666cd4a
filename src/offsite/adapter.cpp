// offsite/adapter.cpp: see adapter.h.
#include "offsite/adapter.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "checkpoint/safetensors.h"
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

std::string original_hf_name(DecoderLM& model, const std::string& internal) {
  int64_t pos;
  std::string rest;
  if (split_block_name(internal, pos, rest))
    return model->hf_name("blocks." + std::to_string(model->block_origin().at(static_cast<size_t>(pos))) + "." + rest);
  return model->hf_name(internal);
}

Adapter extract_adapter(DecoderLM& model, const std::vector<int64_t>& blocks, bool include_head,
                        const std::string& fingerprint, int64_t num_original_layers,
                        const nlohmann::json& extra) {
  torch::NoGradGuard ng;
  std::set<int64_t> wanted(blocks.begin(), blocks.end());
  Adapter a;
  for (const auto& p : model->named_parameters(true)) {
    int64_t pos;
    std::string rest;
    bool keep = false;
    if (split_block_name(p.key(), pos, rest)) {
      keep = wanted.count(model->block_origin().at(static_cast<size_t>(pos))) > 0;
    } else {
      keep = include_head && (p.key().rfind("head.", 0) == 0 || p.key().rfind("lm_head.", 0) == 0);
    }
    if (keep) a.tensors[original_hf_name(model, p.key())] = p.value().detach().to(torch::kCPU).contiguous();
  }
  a.config = extra;
  a.config["format"] = "offsite-adapter";
  a.config["format_version"] = 1;
  a.config["model_type"] = arch_name(model->config().arch);
  a.config["num_original_layers"] = num_original_layers;
  a.config["blocks"] = std::vector<int64_t>(wanted.begin(), wanted.end());
  a.config["includes_head"] = include_head;
  a.config["fingerprint"] = fingerprint;
  return a;
}

void save_adapter(const Adapter& a, const std::string& dir) {
  write_dir_atomically(dir, [&](const std::string& tmp) {
    save_safetensors(path_join(tmp, "adapter.safetensors"), a.tensors);
    write_text_file_atomically(path_join(tmp, "adapter_config.json"), a.config.dump(2) + "\n");
  });
}

Adapter load_adapter(const std::string& dir) {
  OT_REQUIRE(dir_exists(dir), dir, ": adapter directory does not exist");
  const std::string cfg_path = path_join(dir, "adapter_config.json");
  const std::string st_path = path_join(dir, "adapter.safetensors");
  OT_REQUIRE(file_exists(cfg_path), cfg_path, ": missing (expected an adapter written by `ot finetune`)");
  OT_REQUIRE(file_exists(st_path), st_path, ": missing (expected an adapter written by `ot finetune`)");
  Adapter a;
  a.config = parse_adapter_config(read_text_file(cfg_path), cfg_path);
  auto f = SafetensorsFile::open(st_path);
  for (const auto& kv : f.all()) a.tensors[kv.first] = kv.second.clone();
  return a;
}

namespace {
void assign(DecoderLM& model, const Adapter& a, const std::string& source, bool by_origin) {
  torch::NoGradGuard ng;
  std::map<std::string, at::Tensor> by_name;
  for (auto& p : model->named_parameters(true))
    by_name[by_origin ? original_hf_name(model, p.key()) : model->hf_name(p.key())] = p.value();
  for (const auto& kv : a.tensors) {
    auto it = by_name.find(kv.first);
    OT_REQUIRE(it != by_name.end(), source, ": adapter tensor '", kv.first,
               "' has no counterpart in the model (wrong model or wrong block indices)");
    OT_REQUIRE(it->second.sizes() == kv.second.sizes(), source, ": adapter tensor '", kv.first, "' has shape ",
               kv.second.sizes(), " but the model's is ", it->second.sizes());
    it->second.copy_(kv.second);
  }
}

void check_identity(DecoderLM& model, const Adapter& a, const std::string& source, int64_t blocks_expected) {
  OT_REQUIRE(a.config["model_type"] == arch_name(model->config().arch), source, ": adapter is for a ",
             a.config["model_type"].get<std::string>(), " model, not ", arch_name(model->config().arch));
  OT_REQUIRE(a.config["num_original_layers"].get<int64_t>() == blocks_expected, source, ": adapter is for a ",
             a.config["num_original_layers"], "-block model but this one has ", blocks_expected);
  std::string fp = model_fingerprint(model);
  OT_REQUIRE(a.config["fingerprint"].get<std::string>() == fp, source, ": adapter fingerprint ",
             a.config["fingerprint"].get<std::string>(), " does not match this model (", fp,
             "): it was trained for a different model");
}
}  // namespace

// Bottleneck adapters are extra modules, not weight deltas: the receiving model needs
// them before their tensors can be assigned. Returns the positions that got them.
static std::vector<int64_t> add_bottleneck_modules(DecoderLM& model, const Adapter& a, const std::string& source) {
  if (!a.config.contains("peft")) return {};
  PeftOptions po = peft_from_json(a.config["peft"], source);
  if (po.method != "adapter") return {};
  std::set<int64_t> wanted;
  for (const auto& b : a.config.value("blocks", std::vector<int64_t>{})) wanted.insert(b);
  std::vector<int64_t> positions;
  for (int64_t j = 0; j < model->num_blocks(); ++j)
    if (wanted.count(model->block_origin()[static_cast<size_t>(j)])) positions.push_back(j);
  apply_peft(model, positions, po);
  return positions;
}

void plug_in(DecoderLM& full, const Adapter& a, const std::string& source) {
  check_identity(full, a, source, full->num_blocks());
  auto positions = add_bottleneck_modules(full, a, source);
  if (!positions.empty()) {
    nlohmann::json pj = a.config["peft"];
    pj["blocks"] = positions;
    full->set_config_entry(kPeftConfigKey, pj);
  }
  assign(full, a, source, /*by_origin=*/false);
}

void load_adapter_into(DecoderLM& bundle, const Adapter& a, const std::string& source) {
  const auto& cfg = bundle->config().raw;
  const int64_t n = bundle_num_original_layers(cfg, bundle->num_blocks(), source);
  check_identity(bundle, a, source, n);
  add_bottleneck_modules(bundle, a, source);
  assign(bundle, a, source, /*by_origin=*/true);
}

}  // namespace ot
