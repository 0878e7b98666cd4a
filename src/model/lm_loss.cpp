// model/lm_loss.cpp: see lm_loss.h. Row r = (b, t) of the (B*T, V) logits has target
// labels[b, t + 1]; its loss is lse_r - x_r[target] with lse_r = log(sum_j exp(x_rj)), and
// d loss / d x_r = (softmax(x_r) - onehot(target)) * (upstream / scored) for the mean.
// Rows are independent and the total is summed in row order, so the result has the same
// bits on any number of threads.
#include "model/lm_loss.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/loss.h>

#include <cmath>
#include <limits>
#include <vector>

#include "model/row_math.h"
#include "util/compat.h"

namespace ot {
namespace {

constexpr int64_t kIgnore = -100;

// sum_j exp(x_j - top) over one row of n logits, top = max_j x_j, summed in double: a
// vocabulary-long float sum would lose about sqrt(V / kLanes) ulps of the log-sum-exp.
OT_ROW_LOOP double sum_exp_below(const float* x, int64_t n, float top) {
  double lane[row_math::kLanes] = {};
  int64_t i = 0;
  for (; i + row_math::kLanes <= n; i += row_math::kLanes)
    for (int j = 0; j < row_math::kLanes; ++j) lane[j] += double(row_math::exp_nonpositive(x[i + j] - top));
  double sum = 0.0;
  for (; i < n; ++i) sum += double(row_math::exp_nonpositive(x[i] - top));
  for (int j = 0; j < row_math::kLanes; ++j) sum += lane[j];
  return sum;
}

// g = exp(x - lse) * scale over one row (softmax times the upstream factor).
OT_ROW_LOOP void scaled_softmax_row(float* g, const float* x, int64_t n, float lse, float scale) {
  for (int64_t i = 0; i < n; ++i) g[i] = row_math::exp_nonpositive(x[i] - lse) * scale;
}

// Rows per parallel task: enough logits that a task outweighs starting it.
int64_t grain_rows(int64_t V) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(V, 1)); }

// The target of each of the B*T rows: labels shifted left by one, the last position ignored.
std::vector<int64_t> shifted_targets(const at::Tensor& labels, int64_t V) {
  const int64_t B = labels.size(0), T = labels.size(1);
  const at::Tensor y = labels.to(at::kLong).contiguous();
  const int64_t* py = y.data_ptr<int64_t>();
  std::vector<int64_t> targets(static_cast<size_t>(B * T), kIgnore);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) {
      const int64_t v = py[b * T + t + 1];
      TORCH_CHECK(v == kIgnore || (v >= 0 && v < V), "causal_lm_loss: label ", v, " at (", b, ", ", t + 1,
                  ") is outside the vocabulary [0, ", V, ") and is not -100");
      targets[static_cast<size_t>(b * T + t)] = v;
    }
  return targets;
}

// Per-row log-sum-exp (NaN for an ignored row) and the reduced loss as a double.
struct Forward {
  at::Tensor lse;  // (B*T) fp32
  double total = 0.0;
  int64_t scored = 0;
};

Forward run_forward(const at::Tensor& logits, const std::vector<int64_t>& targets) {
  const int64_t V = logits.size(-1), rows = logits.numel() / V;
  const float* x = logits.data_ptr<float>();
  Forward f;
  f.lse = at::empty({rows}, logits.options().requires_grad(false));
  float* lse = f.lse.data_ptr<float>();
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  at::parallel_for(0, rows, grain_rows(V), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t y = targets[static_cast<size_t>(r)];
      if (y == kIgnore) {
        lse[r] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const float* row = x + r * V;
      const float top = row_math::max_of(row, V);
      const double l = double(top) + std::log(sum_exp_below(row, V, top));
      lse[r] = static_cast<float>(l);
      row_loss[static_cast<size_t>(r)] = l - double(row[y]);
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[static_cast<size_t>(r)] == kIgnore) continue;
    f.total += row_loss[static_cast<size_t>(r)];
    ++f.scored;
  }
  return f;
}

double reduce(const Forward& f, LossReduction reduction) {
  if (reduction == LossReduction::kSum) return f.total;
  return f.scored > 0 ? f.total / double(f.scored) : std::numeric_limits<double>::quiet_NaN();
}

// Autograd node: saves the logits, each row's log-sum-exp and target; backward writes the
// logits' gradient in one pass per row.
class CausalLMLossFunction : public torch::autograd::Function<CausalLMLossFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& labels, int64_t reduction) {
    const int64_t V = logits.size(-1);
    std::vector<int64_t> targets = shifted_targets(labels, V);
    Forward f = run_forward(logits, targets);
    const auto how = static_cast<LossReduction>(reduction);
    ctx->save_for_backward({logits, f.lse});
    ctx->saved_data["targets"] = c10::IValue(std::move(targets));
    ctx->saved_data["per_row"] = how == LossReduction::kSum ? 1.0 : 1.0 / double(f.scored);
    return at::scalar_tensor(reduce(f, how), logits.options().requires_grad(false));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &lse_t = saved[1];
    const std::vector<int64_t> targets = ctx->saved_data["targets"].toIntVector();
    const float scale = static_cast<float>(grad_out[0].item<double>() * ctx->saved_data["per_row"].toDouble());
    const int64_t V = logits.size(-1), rows = logits.numel() / V;
    at::Tensor grad = at::empty_like(logits, at::MemoryFormat::Contiguous);
    const float* x = logits.data_ptr<float>();
    const float* lse = lse_t.data_ptr<float>();
    float* g = grad.data_ptr<float>();
    at::parallel_for(0, rows, grain_rows(V), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float* gr = g + r * V;
        const int64_t y = targets[static_cast<size_t>(r)];
        if (y == kIgnore) {
          std::fill(gr, gr + V, 0.0f);
          continue;
        }
        scaled_softmax_row(gr, x + r * V, V, lse[r], scale);
        gr[y] -= scale;
      }
    });
    return {grad, at::Tensor(), at::Tensor()};
  }
};

// Whether the fused rows take these logits: fp32, CPU, (B, T, V) contiguous.
bool fused_applies(const at::Tensor& logits, const at::Tensor& labels) {
  return logits.dim() == 3 && logits.device().is_cpu() && logits.scalar_type() == at::kFloat &&
         logits.layout() == at::kStrided && logits.is_contiguous() && !logits.is_neg() && logits.size(2) > 0 &&
         labels.dim() == 2 && labels.device().is_cpu() && labels.size(0) == logits.size(0) &&
         labels.size(1) == logits.size(1);
}

}  // namespace

at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, LossReduction reduction) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.size(0) == logits.size(0) &&
                  labels.size(1) == logits.size(1),
              "causal_lm_loss: logits (B, T, V) and labels (B, T) expected, got ", logits.sizes(), " and ",
              labels.sizes());
  const at::Tensor l = logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble
                           ? logits
                           : logits.to(at::kFloat);
  if (fused_applies(l, labels)) {
    if (at::GradMode::is_enabled() && l.requires_grad())
      return CausalLMLossFunction::apply(l, labels, static_cast<int64_t>(reduction));
    Forward f = run_forward(l, shifted_targets(labels, l.size(-1)));
    return at::scalar_tensor(reduce(f, reduction), l.options());
  }
  // Elsewhere (GPU, fp64, strided logits): cross entropy on the shifted rows.
  const int64_t V = l.size(-1);
  auto x = l.narrow(1, 0, l.size(1) - 1).reshape({-1, V}).to(at::kFloat);
  auto y = labels.narrow(1, 1, labels.size(1) - 1).reshape({-1});
  auto options = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore);
  if (reduction == LossReduction::kSum) options.reduction(torch::kSum);
  return torch::nn::functional::cross_entropy(x, y, options);
}

int64_t causal_lm_scored_tokens(const at::Tensor& labels) {
  return labels.narrow(1, 1, labels.size(1) - 1).ne(kIgnore).sum().item<int64_t>();
}

}  // namespace ot
