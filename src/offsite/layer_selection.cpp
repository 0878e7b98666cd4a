// offsite/layer_selection.cpp: see layer_selection.h.
#include "offsite/layer_selection.h"

#include <cmath>
#include <sstream>

#include "util/error.h"

namespace ot {

int64_t round_half_even(double x) {
  double fl = std::floor(x);
  double diff = x - fl;
  if (diff > 0.5) return static_cast<int64_t>(fl) + 1;
  if (diff < 0.5) return static_cast<int64_t>(fl);
  int64_t f = static_cast<int64_t>(fl);
  return (f % 2 == 0) ? f : f + 1;  // exact tie: to even
}

namespace {
void check_mk(int64_t m, int64_t k) {
  OT_REQUIRE(m >= 1, "emulator: no middle blocks to choose from (m = ", m, ")");
  OT_REQUIRE(k >= 1 && k <= m, "emulator: cannot keep ", k, " of ", m,
             " middle blocks (expected 1 <= emulator layers <= ", m, ")");
}
}  // namespace

std::vector<int64_t> uniform_layer_indices(int64_t m, int64_t k) {
  check_mk(m, k);
  // The paper's code divides by k-1; for k == 1 it fails. Keep the central block then.
  if (k == 1) return {round_half_even(double(m - 1) / 2.0)};
  const double stride = double(m - 1) / double(k - 1);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < k; ++i) idx.push_back(round_half_even(double(i) * stride));
  return idx;
}

std::vector<int64_t> floor_layer_indices(int64_t m, int64_t k) {
  check_mk(m, k);
  if (k == 1) return {0};
  const double stride = double(m - 1) / double(k - 1);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < k; ++i) idx.push_back(static_cast<int64_t>(std::floor(double(i) * stride)));
  return idx;
}

std::vector<int64_t> parse_layer_list(const std::string& text, int64_t m, const std::string& option) {
  std::vector<int64_t> idx;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    OT_REQUIRE(b != std::string::npos, option, ": empty entry in layer list '", text, "'");
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    OT_REQUIRE(used == item.size(), option, ": '", item, "' is not a block index (expected e.g. 0,2,5)");
    OT_REQUIRE(v >= 0 && v < m, option, ": block index ", v, " is outside the ", m, " middle blocks [0, ", m, ")");
    OT_REQUIRE(idx.empty() || v > idx.back(), option, ": indices must be strictly increasing, got ", v,
               " after ", idx.back());
    idx.push_back(v);
  }
  OT_REQUIRE(!idx.empty(), option, ": empty layer list");
  return idx;
}

void check_offsite_split(int64_t n, int64_t l, int64_t r, int64_t k) {
  OT_REQUIRE(l >= 0 && r >= 0, "adapter: block counts must be non-negative, got bottom ", l, ", top ", r);
  OT_REQUIRE(l + r >= 1, "adapter: needs at least one block (bottom ", l, " + top ", r, " = 0)");
  OT_REQUIRE(l + r < n, "adapter: bottom ", l, " + top ", r, " = ", l + r, " blocks leaves no middle in a ",
             n, "-block model (expected l + r < ", n, ")");
  const int64_t m = n - l - r;
  OT_REQUIRE(k >= 1, "emulator: needs at least 1 layer, got ", k);
  OT_REQUIRE(k <= m, "emulator: ", k, " layers requested but only ", m, " middle blocks exist (n ", n,
             " - bottom ", l, " - top ", r, ")");
}

}  // namespace ot
