// offsite/cka.cpp: see cka.h.
#include "offsite/cka.h"

#include <torch/torch.h>

#include "offsite/block_input.h"
#include "util/error.h"

namespace ot {

double linear_cka(const at::Tensor& x, const at::Tensor& y) {
  OT_REQUIRE(x.dim() == 2 && y.dim() == 2 && x.size(0) == y.size(0), "cka: expected (N, C) inputs with equal N");
  auto xc = x.to(torch::kDouble) - x.to(torch::kDouble).mean(0, true);
  auto yc = y.to(torch::kDouble) - y.to(torch::kDouble).mean(0, true);
  double cross = torch::mm(yc.t(), xc).pow(2).sum().item<double>();
  double nx = torch::mm(xc.t(), xc).norm().item<double>();
  double ny = torch::mm(yc.t(), yc).norm().item<double>();
  return (nx > 0 && ny > 0) ? cross / (nx * ny) : 0.0;
}

std::vector<std::vector<double>> linear_cka_matrix(const std::vector<at::Tensor>& reps) {
  // Each representation centred and its ||Xc^T Xc||_F once, then one product per pair.
  std::vector<at::Tensor> centred;
  std::vector<double> self_norm;
  for (const auto& r : reps) {
    OT_REQUIRE(r.dim() == 2 && r.size(0) == reps[0].size(0), "cka: expected (N, C) inputs with equal N");
    at::Tensor x = r.to(torch::kDouble);
    x = x - x.mean(0, true);
    self_norm.push_back(torch::mm(x.t(), x).norm().item<double>());
    centred.push_back(std::move(x));
  }
  const size_t m = reps.size();
  std::vector<std::vector<double>> sim(m, std::vector<double>(m, 0.0));
  for (size_t i = 0; i < m; ++i) {
    sim[i][i] = self_norm[i] > 0 ? 1.0 : 0.0;
    for (size_t j = i + 1; j < m; ++j) {
      const double cross = torch::mm(centred[j].t(), centred[i]).pow(2).sum().item<double>();
      const double denom = self_norm[i] * self_norm[j];
      sim[i][j] = sim[j][i] = denom > 0 ? cross / denom : 0.0;
    }
  }
  return sim;
}

std::vector<int64_t> cluster_adjacent_layers(const std::vector<std::vector<double>>& sim, int64_t k) {
  const int64_t n = static_cast<int64_t>(sim.size());
  OT_REQUIRE(k >= 1 && k <= n, "cka: cannot make ", k, " clusters of ", n, " layers");
  std::vector<std::vector<int64_t>> clusters;
  for (int64_t i = 0; i < n; ++i) clusters.push_back({i});
  while (static_cast<int64_t>(clusters.size()) > k) {
    size_t best = 0;
    double best_sim = -1e300;
    for (size_t c = 0; c + 1 < clusters.size(); ++c) {
      double s = sim[static_cast<size_t>(clusters[c].back())][static_cast<size_t>(clusters[c + 1].front())];
      if (s > best_sim) {  // ties: the lowest pair
        best_sim = s;
        best = c;
      }
    }
    clusters[best].insert(clusters[best].end(), clusters[best + 1].begin(), clusters[best + 1].end());
    clusters.erase(clusters.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  std::vector<int64_t> kept;
  for (const auto& c : clusters) kept.push_back(c[c.size() / 2]);
  return kept;
}

CkaSelection cka_select_middle_blocks(BlockModelImpl& model, int64_t bottom, int64_t top, int64_t k,
                                      const std::vector<Batch>& batches) {
  OT_REQUIRE(!batches.empty(), "--strategy cka: needs calibration data (--calibration CORPUS or --calibration-images)");
  torch::NoGradGuard ng;
  const int64_t n = model.num_blocks(), m = n - bottom - top;
  std::vector<std::vector<at::Tensor>> outs(static_cast<size_t>(m));
  for (const auto& host : batches) {
    const Batch b = to_device(host, model.device());
    AttentionContext ctx;
    at::Tensor h = embed_batch(model, b, ctx, "--strategy cka");
    // Padding tokens are left out; an image's every token is real.
    at::Tensor keep = b.attention_mask.defined()
                          ? b.attention_mask.to(torch::kBool).flatten()
                          : torch::ones({h.size(0) * h.size(1)}, h.options().dtype(torch::kBool));
    for (int64_t i = 0; i < n - top; ++i) {
      h = model.run_block(i, h, ctx);
      if (i >= bottom) outs[static_cast<size_t>(i - bottom)].push_back(h.reshape({-1, h.size(-1)}).index({keep}).to(torch::kFloat));
    }
  }
  std::vector<at::Tensor> reps;
  for (auto& o : outs) reps.push_back(torch::cat(o, 0));
  CkaSelection out;
  out.first_block = bottom;
  out.similarity = linear_cka_matrix(reps);
  out.kept = cluster_adjacent_layers(out.similarity, k);
  return out;
}

}  // namespace ot
