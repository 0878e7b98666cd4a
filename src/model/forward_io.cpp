// model/forward_io.cpp: see forward_io.h.
#include "model/forward_io.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot {

namespace {

at::Tensor int_matrix(const nlohmann::json& j, const std::string& key, const std::string& source,
                      int64_t rows, int64_t cols) {
  OT_REQUIRE(j.is_array() && !j.empty(), source, ": key '", key,
             "': expected a non-empty list of lists of integers");
  const int64_t B = static_cast<int64_t>(j.size());
  OT_REQUIRE(rows < 0 || B == rows, source, ": key '", key, "': expected ", rows, " rows (as input_ids), got ", B);
  std::vector<int64_t> flat;
  int64_t T = -1;
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = j[static_cast<size_t>(b)];
    OT_REQUIRE(row.is_array(), source, ": key '", key, "' row ", b, ": expected a list of integers");
    if (T < 0) T = static_cast<int64_t>(row.size());
    OT_REQUIRE(static_cast<int64_t>(row.size()) == T, source, ": key '", key, "' row ", b, " has ",
               row.size(), " entries but row 0 has ", T, " (pad rows to equal length)");
    for (size_t t = 0; t < row.size(); ++t) {
      OT_REQUIRE(row[t].is_number_integer(), source, ": key '", key, "' row ", b, " position ", t,
                 ": expected an integer, got ", row[t].dump());
      flat.push_back(row[t].get<int64_t>());
    }
  }
  OT_REQUIRE(T > 0, source, ": key '", key, "': rows are empty");
  OT_REQUIRE(cols < 0 || T == cols, source, ": key '", key, "': expected ", cols,
             " columns (as input_ids), got ", T);
  return torch::tensor(flat, torch::kLong).view({B, T});
}

}  // namespace

ForwardInput parse_forward_input(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large
    fail(source, ": not valid JSON (", e.what(), ")");
  }
  OT_REQUIRE(j.is_object(), source, ": expected a JSON object with key 'input_ids'");
  for (auto it = j.begin(); it != j.end(); ++it)
    OT_REQUIRE(it.key() == "input_ids" || it.key() == "attention_mask" || it.key() == "position_ids",
               source, ": unknown key '", it.key(), "' (expected input_ids, attention_mask, position_ids)");
  OT_REQUIRE(j.contains("input_ids"), source, ": missing key 'input_ids'");
  ForwardInput in;
  in.input_ids = int_matrix(j["input_ids"], "input_ids", source, -1, -1);
  const int64_t B = in.input_ids.size(0), T = in.input_ids.size(1);
  if (j.contains("attention_mask") && !j["attention_mask"].is_null()) {
    in.attention_mask = int_matrix(j["attention_mask"], "attention_mask", source, B, T);
    OT_REQUIRE(((in.attention_mask == 0) | (in.attention_mask == 1)).all().item<bool>(), source,
               ": key 'attention_mask': expected only 0 and 1");
  }
  if (j.contains("position_ids") && !j["position_ids"].is_null())
    in.position_ids = int_matrix(j["position_ids"], "position_ids", source, B, T);
  if (in.position_ids.defined())
    OT_REQUIRE(in.position_ids.min().item<int64_t>() >= 0, source,
               ": key 'position_ids': expected non-negative positions");
  return in;
}

ForwardInput read_forward_input(const std::string& path) {
  return parse_forward_input(read_text_file(path), path);
}

void run_forward_to_file(DecoderLM& model, const ForwardInput& in, const std::string& out_path,
                         bool hidden_states) {
  check_token_ids(in.input_ids, model->config().vocab_size, "input_ids");
  torch::NoGradGuard no_grad;
  auto dev = model->device();
  ForwardOptions fo;
  fo.hidden_states = hidden_states;
  auto to_dev = [&](const at::Tensor& t) { return t.defined() ? t.to(dev) : t; };
  ForwardOutput out = model->forward(to_dev(in.input_ids), to_dev(in.attention_mask),
                                     to_dev(in.position_ids), fo);
  StateDict tensors;
  auto f32 = [](const at::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); };
  tensors["logits"] = f32(out.logits);
  if (hidden_states) {
    tensors["embeddings"] = f32(out.embeddings);
    for (size_t i = 0; i < out.block_outputs.size(); ++i)
      tensors["hidden_states." + std::to_string(i)] = f32(out.block_outputs[i]);
  }
  save_safetensors(out_path, tensors);
}

at::Tensor read_pixel_values(const std::string& path) {
  OT_REQUIRE(file_exists(path), path, ": file does not exist (expected a safetensors file with 'pixel_values')");
  StateDict all = SafetensorsFile::open(path).all();
  auto it = all.find("pixel_values");
  if (it == all.end()) {
    std::string keys;
    for (const auto& kv : all) keys += (keys.empty() ? "'" : ", '") + kv.first + "'";
    fail(path, ": no tensor 'pixel_values' (it holds ", keys.empty() ? std::string("no tensors") : keys, ")");
  }
  const at::Tensor& px = it->second;
  OT_REQUIRE(px.dim() == 4, path, ": 'pixel_values': expected shape (batch, channels, height, width), got ", px.sizes());
  OT_REQUIRE(px.is_floating_point(), path, ": 'pixel_values': expected floating-point values, got ", px.scalar_type());
  OT_REQUIRE(torch::isfinite(px).all().item<bool>(), path, ": 'pixel_values' holds NaN or infinite values");
  return px.to(torch::kFloat).contiguous();
}

void run_vision_forward_to_file(VisionEncoder& model, const at::Tensor& pixels, const std::string& source,
                                const std::string& out_path, bool hidden_states, bool interpolate_positions) {
  model->check_pixels(pixels, interpolate_positions, source);
  torch::NoGradGuard no_grad;
  VisionForwardOptions fo;
  fo.hidden_states = hidden_states;
  fo.interpolate_positions = interpolate_positions;
  VisionOutput out = model->forward(pixels.to(model->device()), fo);
  StateDict tensors;
  auto f32 = [](const at::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); };
  if (out.logits.defined()) tensors["logits"] = f32(out.logits);
  tensors["last_hidden_state"] = f32(out.last_hidden_state);
  if (!model->has_classifier()) tensors["pooler_output"] = f32(out.pooler_output);
  if (out.image_embeds.defined()) tensors["image_embeds"] = f32(out.image_embeds);
  if (hidden_states) {
    tensors["embeddings"] = f32(out.embeddings);
    for (size_t i = 0; i < out.block_outputs.size(); ++i)
      tensors["hidden_states." + std::to_string(i)] = f32(out.block_outputs[i]);
  }
  save_safetensors(out_path, tensors);
}

}  // namespace ot
