// checkpoint/hf_checkpoint.cpp: see hf_checkpoint.h.
#include "checkpoint/hf_checkpoint.h"

#include <cstdio>
#include <map>
#include <set>

#include "checkpoint/safetensors.h"
#include "checkpoint/torch_bin.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

using json = nlohmann::json;

const char* const kSafetensors = "model.safetensors";
const char* const kSafetensorsIndex = "model.safetensors.index.json";
const char* const kTorchBin = "pytorch_model.bin";
const char* const kTorchBinIndex = "pytorch_model.bin.index.json";

std::string strip_json_tag(const std::string& what) {
  if (!what.empty() && what[0] == '[') {
    auto close = what.find("] ");
    if (close != std::string::npos) return what.substr(close + 2);
  }
  return what;
}

json read_json_file(const std::string& path) {
  std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(path, ": malformed JSON: ", strip_json_tag(e.what()));
  }
}

void require_dir(const std::string& dir) {
  OT_REQUIRE(dir_exists(dir), dir, ": no such directory (expected a Hugging Face checkpoint directory)");
}

// tensor name -> shard file name, from an index's "weight_map".
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  json index = read_json_file(index_path);
  OT_REQUIRE(index.is_object(), index_path, ": expected a JSON object with \"weight_map\"");
  auto wm = index.find("weight_map");
  OT_REQUIRE(wm != index.end() && wm->is_object(), index_path,
             ": missing \"weight_map\" object (tensor name -> shard file)");
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    OT_REQUIRE(it->is_string(), index_path, ": weight_map entry '", it.key(),
               "' must be a shard file name (string), got ", it->type_name());
    std::string shard = it->get<std::string>();
    // Shards live beside the index; anything else could read files outside the checkpoint.
    OT_REQUIRE(!shard.empty() && shard.find('/') == std::string::npos && shard != "." &&
                   shard != "..",
               index_path, ": weight_map entry '", it.key(), "' names shard '", shard,
               "', expected a plain file name in the same directory");
    out.emplace(it.key(), shard);
  }
  OT_REQUIRE(!out.empty(), index_path, ": \"weight_map\" is empty");
  return out;
}

std::string shard_name(std::size_t i, std::size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i, n);
  return buf;
}

}  // namespace

json load_hf_config(const std::string& dir) {
  require_dir(dir);
  std::string path = path_join(dir, "config.json");
  OT_REQUIRE(file_exists(path), path,
             ": missing (a Hugging Face checkpoint directory needs config.json)");
  json config = read_json_file(path);
  OT_REQUIRE(config.is_object(), path, ": expected a JSON object, got ", config.type_name());
  return config;
}

WeightFiles find_weight_files(const std::string& dir) {
  require_dir(dir);
  WeightFiles wf;
  if (file_exists(path_join(dir, kSafetensors))) {
    wf.format = "safetensors";
    wf.files.push_back(path_join(dir, kSafetensors));
    return wf;
  }
  for (const char* index : {kSafetensorsIndex, kTorchBinIndex}) {
    if (index == kTorchBinIndex && file_exists(path_join(dir, kTorchBin))) {
      wf.format = "torch";
      wf.files.push_back(path_join(dir, kTorchBin));
      return wf;
    }
    std::string index_path = path_join(dir, index);
    if (!file_exists(index_path)) continue;
    wf.format = index == kSafetensorsIndex ? "safetensors" : "torch";
    wf.index = index_path;
    std::set<std::string> shards;
    for (const auto& [name, shard] : read_weight_map(index_path)) shards.insert(shard);
    for (const auto& shard : shards) {
      std::string p = path_join(dir, shard);
      OT_REQUIRE(file_exists(p), index_path, ": weight_map names shard '", shard,
                 "', which does not exist in ", dir);
      wf.files.push_back(p);
    }
    return wf;
  }
  fail(dir, ": no model weights found (looked for ", kSafetensors, ", ", kSafetensorsIndex, ", ",
       kTorchBin, ", ", kTorchBinIndex, ")");
}

StateDict load_hf_weights(const std::string& dir) {
  WeightFiles wf = find_weight_files(dir);
  StateDict out;
  std::map<std::string, std::string> origin;  // tensor name -> file it came from
  for (const auto& file : wf.files) {
    StateDict part = wf.format == "safetensors" ? SafetensorsFile::open(file).all()
                                                : load_torch_bin(file);
    for (auto& [name, t] : part) {
      auto [it, fresh] = origin.emplace(name, file);
      OT_REQUIRE(fresh, dir, ": tensor '", name, "' appears in two shards: ", it->second, " and ",
                 file);
      out.emplace(name, std::move(t));
    }
  }
  if (!wf.index.empty()) {
    // The index is the contract: every tensor it lists must be where it says.
    for (const auto& [name, shard] : read_weight_map(wf.index)) {
      auto it = origin.find(name);
      OT_REQUIRE(it != origin.end() && it->second == path_join(dir, shard), wf.index,
                 ": weight_map places tensor '", name, "' in shard '", shard,
                 "', but that shard does not hold it");
    }
  }
  return out;
}

void write_hf_checkpoint_files(const std::string& dir, const json& config,
                               const StateDict& tensors, std::uint64_t max_shard_bytes) {
  OT_REQUIRE(config.is_object(), dir, ": config must be a JSON object, got ", config.type_name());
  write_text_file_atomically(path_join(dir, "config.json"), config.dump(2) + "\n");

  // Greedy split in key order, as transformers does.
  std::vector<StateDict> shards(1);
  std::uint64_t current = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    OT_REQUIRE(t.defined(), dir, ": tensor '", name, "' is undefined");
    const auto bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    if (max_shard_bytes > 0 && !shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().emplace(name, t);
    current += bytes;
    total += bytes;
  }
  if (shards.size() == 1) {
    save_safetensors(path_join(dir, kSafetensors), tensors);
    return;
  }
  json weight_map = json::object();
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::string file = shard_name(i + 1, shards.size());
    save_safetensors(path_join(dir, file), shards[i]);
    for (const auto& kv : shards[i]) weight_map[kv.first] = file;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text_file_atomically(path_join(dir, kSafetensorsIndex), index.dump(2) + "\n");
}

void save_hf_checkpoint(const std::string& dir, const json& config, const StateDict& tensors,
                        std::uint64_t max_shard_bytes) {
  write_dir_atomically(dir, [&](const std::string& tmp) {
    write_hf_checkpoint_files(tmp, config, tensors, max_shard_bytes);
  });
}

}  // namespace ot
