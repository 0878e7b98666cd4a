// tests/unit/hf_fixtures.h: reading the Hugging Face reference fixtures
// (../shared/fixtures/hf-parity/<arch>.json) and comparing tensors against them; shared by
// the CPU parity tests and the GPU suite.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"
#include "util/fs.h"

namespace ot::test {

// Nested JSON list of numbers -> tensor of `dtype`.
inline at::Tensor json_tensor(const nlohmann::json& j, at::ScalarType dtype) {
  std::vector<int64_t> shape;
  const nlohmann::json* p = &j;
  while (p->is_array()) {
    shape.push_back(static_cast<int64_t>(p->size()));
    if (p->empty()) break;
    p = &(*p)[0];
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_array()) for (const auto& e : x) walk(e);
    else flat.push_back(x.get<double>());
  };
  walk(j);
  return torch::tensor(flat, torch::kDouble).view(shape).to(dtype);
}

inline const nlohmann::json& fixture(const std::string& arch) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(arch);
  if (it == cache.end())
    it = cache.emplace(arch, nlohmann::json::parse(ot::read_text_file(fixture_dir(arch) + ".json"))).first;
  return it->second;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Max |diff| over positions whose mask is 1: logits (B, T, V), mask (B, T).
inline double masked_max_abs_diff(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  auto keep = mask.to(torch::kBool);
  return max_abs_diff(a.index({keep}), b.index({keep}));
}

}  // namespace ot::test
