// model/causal_attention.cpp: see causal_attention.h. Per (batch, head) pair the queries go
// in blocks of kBlock rows; block [r0, r1) needs the keys [0, r1) only. Matrices are
// row-major with a row stride (the BLAS leading dimension) and unit stride along a row.
#include "model/causal_attention.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "model/row_math.h"
#include "util/compat.h"

// Fortran BLAS single-precision GEMM (reference BLAS interface, every argument by pointer),
// from the BLAS library CMake links (OpenBLAS where installed).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace ot {
namespace {

constexpr int64_t kBlock = 64;  // query rows per block

// Row-major C (m x n) = alpha * op(A) op(B) + beta * C, op(A) m x k, op(B) k x n; ta / tb
// take the stored A / B transposed; lda, ldb, ldc are row strides. Column-major BLAS sees
// a row-major matrix as its transpose, so it is asked for C^T = op(B)^T op(A)^T.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const char opa = ta ? 'T' : 'N', opb = tb ? 'T' : 'N';
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int ia = static_cast<int>(lda), ib = static_cast<int>(ldb), ic = static_cast<int>(ldc);
  sgemm_(&opb, &opa, &in, &im, &ik, &alpha, b, &ib, a, &ia, &beta, c, &ic);
}

// Scores s[0, n) of one query row -> softmax probabilities in place; s[n, width) (keys after
// the query) -> 0.
OT_ROW_LOOP void softmax_row(float* s, int64_t n, int64_t width) {
  const float top = row_math::max_of(s, n);
  for (int64_t i = 0; i < n; ++i) s[i] = row_math::exp_nonpositive(s[i] - top);
  const float inv = 1.0f / row_math::sum_of(s, n);
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
  std::fill(s + n, s + width, 0.0f);
}

// One row of the softmax backward: d holds dP on entry and dS = P * (dP - sum(dP * P)) on
// exit, over [0, n); d[n, width) -> 0.
OT_ROW_LOOP void softmax_backward_row(float* d, const float* p, int64_t n, int64_t width) {
  float lane[row_math::kLanes] = {};
  int64_t i = 0;
  for (; i + row_math::kLanes <= n; i += row_math::kLanes)
    for (int j = 0; j < row_math::kLanes; ++j) lane[j] += d[i + j] * p[i + j];
  float dot = 0.0f;
  for (; i < n; ++i) dot += d[i] * p[i];
  for (int j = 0; j < row_math::kLanes; ++j) dot += lane[j];
  for (i = 0; i < n; ++i) d[i] = p[i] * (d[i] - dot);
  std::fill(d + n, d + width, 0.0f);
}

// A (B, heads, T, D) tensor with unit stride along D: where each (batch, head) matrix starts
// and its row stride.
struct Heads {
  explicit Heads(const at::Tensor& t)
      : data(t.data_ptr<float>()), batch(t.stride(0)), head(t.stride(1)), row(t.stride(2)) {}
  const float* at(int64_t b, int64_t h) const { return data + b * batch + h * head; }
  const float* data;
  int64_t batch, head, row;
};

struct Dims {
  explicit Dims(const at::Tensor& q, const at::Tensor& k)
      : B(q.size(0)), H(q.size(1)), Hkv(k.size(1)), T(q.size(2)), D(q.size(3)) {}
  int64_t B, H, Hkv, T, D;
  int64_t group() const { return H / Hkv; }  // query heads per kv head
};

// out (B, T, H*D) contiguous; probs (B, H, T, T) keeps the probabilities (only the blocks on
// and below the diagonal are written) or is null, and then each thread uses a scratch block.
void forward_kernel(const Heads& q, const Heads& k, const Heads& v, const Dims& d, float scale,
                    float* out, float* probs) {
  const int64_t T = d.T, D = d.D, ldo = d.H * d.D;
  at::parallel_for(0, d.B * d.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(probs ? 0 : static_cast<size_t>(std::min(kBlock, T) * T));
    for (int64_t i = begin; i < end; ++i) {  // i = b * H + h
      const int64_t b = i / d.H, h = i % d.H, g = h / d.group();
      const float *qi = q.at(b, h), *ki = k.at(b, g), *vi = v.at(b, g);
      float* oi = out + b * T * ldo + h * D;
      for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
        const int64_t r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
        float* s = probs ? probs + (i * T + r0) * T : scratch.data();  // rows x r1, row stride T
        gemm(false, true, rows, r1, D, scale, qi + r0 * q.row, q.row, ki, k.row, 0.0f, s, T);
        for (int64_t r = r0; r < r1; ++r) softmax_row(s + (r - r0) * T, r + 1, r1);
        gemm(false, false, rows, D, r1, 1.0f, s, T, vi, v.row, 0.0f, oi + r0 * ldo, ldo);
      }
    }
  });
}

// dout, dq (B, T, H*D) contiguous; dk, dv (B, T, Hkv*D) contiguous and zero on entry. Each
// thread owns whole kv heads, so the query heads sharing one add into its dk, dv alone.
void backward_kernel(const Heads& q, const Heads& k, const Heads& v, const Dims& d, float scale,
                     const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t T = d.T, D = d.D, ldq = d.H * d.D, ldkv = d.Hkv * d.D;
  at::parallel_for(0, d.B * d.Hkv, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> ds(static_cast<size_t>(std::min(kBlock, T) * T));
    for (int64_t i = begin; i < end; ++i) {  // i = b * Hkv + g
      const int64_t b = i / d.Hkv, g = i % d.Hkv;
      const float *ki = k.at(b, g), *vi = v.at(b, g);
      float* dki = dk + b * T * ldkv + g * D;
      float* dvi = dv + b * T * ldkv + g * D;
      for (int64_t h = g * d.group(); h < (g + 1) * d.group(); ++h) {
        const float* qi = q.at(b, h);
        const float* doi = dout + b * T * ldq + h * D;
        float* dqi = dq + b * T * ldq + h * D;
        for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
          const int64_t r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
          const float* p = probs + ((b * d.H + h) * T + r0) * T;  // rows x r1, row stride T
          gemm(false, true, rows, r1, D, 1.0f, doi + r0 * ldq, ldq, vi, v.row, 0.0f, ds.data(), T);
          for (int64_t r = r0; r < r1; ++r)
            softmax_backward_row(ds.data() + (r - r0) * T, p + (r - r0) * T, r + 1, r1);
          gemm(false, false, rows, D, r1, scale, ds.data(), T, ki, k.row, 0.0f, dqi + r0 * ldq, ldq);
          gemm(true, false, r1, D, rows, scale, ds.data(), T, qi + r0 * q.row, q.row, 1.0f, dki, ldkv);
          gemm(true, false, r1, D, rows, 1.0f, p, T, doi + r0 * ldq, ldq, 1.0f, dvi, ldkv);
        }
      }
    }
  });
}

// (B, T, H*D) output; probs as in forward_kernel.
at::Tensor run_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                       float* probs) {
  const Dims d(q, k);
  at::Tensor out = at::empty({d.B, d.T, d.H * d.D}, q.options());
  forward_kernel(Heads(q), Heads(k), Heads(v), d, static_cast<float>(scale), out.data_ptr<float>(),
                 probs);
  return out;
}

class CausalAttentionFunction : public torch::autograd::Function<CausalAttentionFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                            const at::Tensor& k, const at::Tensor& v, double scale) {
    const Dims d(q, k);
    at::Tensor probs = at::empty({d.B, d.H, d.T, d.T}, q.options());
    at::Tensor out = run_forward(q, k, v, scale, probs.data_ptr<float>());
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const Dims d(q, k);
    const at::Tensor dout = grads[0].contiguous();
    TORCH_INTERNAL_ASSERT(dout.scalar_type() == at::kFloat &&
                          dout.sizes() == at::IntArrayRef({d.B, d.T, d.H * d.D}));
    at::Tensor dq = at::empty({d.B, d.T, d.H, d.D}, q.options());
    at::Tensor dk = at::zeros({d.B, d.T, d.Hkv, d.D}, k.options());
    at::Tensor dv = at::zeros({d.B, d.T, d.Hkv, d.D}, v.options());
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    backward_kernel(Heads(q), Heads(k), Heads(v), d, scale, probs.data_ptr<float>(),
                    dout.data_ptr<float>(), dq.data_ptr<float>(), dk.data_ptr<float>(),
                    dv.data_ptr<float>());
    // (B, T, heads, D) -> (B, heads, T, D) views, the inputs' shapes
    return {dq.transpose(1, 2), dk.transpose(1, 2), dv.transpose(1, 2), at::Tensor()};
  }
};

bool fits_int(int64_t x) { return x >= 0 && x <= std::numeric_limits<int>::max(); }

}  // namespace

bool causal_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!q.defined() || !k.defined() || !v.defined()) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (t->dim() != 4 || !t->device().is_cpu() || t->scalar_type() != at::kFloat ||
        t->layout() != at::kStrided || t->is_neg() || t->stride(3) != 1)
      return false;
  }
  if (compat::autocast_enabled(c10::DeviceType::CPU)) return false;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Hkv = k.size(1);
  if (B < 1 || H < 1 || T < 2 || D < 1 || Hkv < 1 || H % Hkv != 0) return false;
  if (k.sizes() != at::IntArrayRef({B, Hkv, T, D}) || v.sizes() != k.sizes()) return false;
  if (!fits_int(T) || !fits_int(H * D)) return false;
  for (const at::Tensor* t : {&q, &k, &v})
    if (t->stride(2) < D || !fits_int(t->stride(2))) return false;
  return true;
}

at::Tensor causal_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                double scale) {
  TORCH_INTERNAL_ASSERT(causal_attention_applies(q, k, v),
                        "causal_attention_cpu: inputs outside what the kernel takes");
  const bool keep_probs = at::GradMode::is_enabled() &&
                          (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (!keep_probs) return run_forward(q, k, v, scale, nullptr);
  return CausalAttentionFunction::apply(q, k, v, scale);
}

}  // namespace ot
