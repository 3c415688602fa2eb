// RMSNorm, residual-add + RMSNorm, and their backwards: CPU twin of kernels/rmsnorm.cu.
//
// What is fused, per row (rows are spread over threads, each row stays on one thread):
//  - forward: sum of squares (fp32 over chunks of 256, the chunks in fp64), then the scaling
//    pass; with the residual, s = x + r is computed, rounded to the storage type, written and
//    squared in the first pass, and the scaling pass re-reads s from cache. x (or x, r) is read
//    once from memory, y (and s) written once; a row of up to a few hundred KiB stays in L2 between the two passes.
//  - backward: the row dot product sum(dy * w * x) in fp32, then one pass that writes
//    dx = rstd * w * dy - x * rstd^3 * dot / cols (+ ds_next for the residual form) and, when
//    dweight is asked for, accumulates dy * x * rstd into a per-chunk fp32 partial. libtorch
//    runs these as ~8 separate elementwise / reduction passes.
// dweight: rows are cut into P = min(rows, 64) fixed chunks; chunk p accumulates its rows into
// workspace[p, :] (fp32, private to the thread that runs it), then dweight[c] = sum_p ws[p, c]
// in a fixed order. The result does not depend on the thread count or scheduling.
// Floors (bytes moved, S = sizeof(storage)):
//   forward  rows*cols*2S (+ rows*cols*2S with the residual: read r, write s) + cols*S + rows*4
//   backward rows*cols*3S (+ rows*cols*S for ds_next) + cols*S + rows*4 (+ cols*4 for dweight)
// FLOPs ~4 (forward) / ~8 (backward) per element: bandwidth-bound.
#include <algorithm>

#include "cpu_common.h"
#include "cpu_math.h"
#include "validate.h"

namespace relat::cpu {
namespace {

// Partials used for dweight: a fixed function of rows, so results are reproducible.
constexpr int64_t kMaxWeightGradChunks = 64;
int64_t weight_grad_chunks(int64_t rows) { return std::min(rows, kMaxWeightGradChunks); }

// The sum of squares runs in fp32 over chunks of kSquaresChunk elements, and the chunk sums add up
// in fp64. A single fp32 accumulator drifts on long rows of similar squares: a row of 4096 equal
// squares (mean square = eps) came out 1.1e-5 too large unvectorised, past the fp32 tolerance,
// while the GPU's block tree is exact to 1e-7 there (tests/native/emu_rmsnorm_test.cpp, edges).
constexpr int64_t kSquaresChunk = 256;

template <class T>
RELAT_VECTOR_CLONES void rmsnorm_row(const T *x, const T *w, T *y, float *rstd_out, int64_t cols,
                                     float eps) {
  double sum = 0.0;
  for (int64_t c0 = 0; c0 < cols; c0 += kSquaresChunk) {
    const int64_t c1 = std::min(cols, c0 + kSquaresChunk);
    float part = 0.f;
#pragma omp simd reduction(+ : part)
    for (int64_t c = c0; c < c1; ++c) {
      const float v = to_f32(x[c]);
      part += v * v;
    }
    sum += part;
  }
  const float ss = float(sum);
  const float rstd = 1.f / std::sqrt(ss / float(cols) + eps);
  if (rstd_out) *rstd_out = rstd;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) store_f32(y + c, to_f32(x[c]) * rstd * to_f32(w[c]));
}

template <class T>
RELAT_VECTOR_CLONES void add_rmsnorm_row(const T *x, const T *r, T *s, const T *w, T *y,
                                         float *rstd_out, int64_t cols, float eps) {
  double sum = 0.0;  // as in rmsnorm_row
  for (int64_t c0 = 0; c0 < cols; c0 += kSquaresChunk) {
    const int64_t c1 = std::min(cols, c0 + kSquaresChunk);
    float part = 0.f;
#pragma omp simd reduction(+ : part)
    for (int64_t c = c0; c < c1; ++c) {
      const float v = round_f32<T>(to_f32(x[c]) + to_f32(r[c]));  // the stored residual, rounded
      store_f32(s + c, v);
      part += v * v;
    }
    sum += part;
  }
  const float ss = float(sum);
  const float rstd = 1.f / std::sqrt(ss / float(cols) + eps);
  if (rstd_out) *rstd_out = rstd;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) store_f32(y + c, to_f32(s[c]) * rstd * to_f32(w[c]));
}

// One row of the backward. kResidual adds ds_next; kWeightGrad accumulates into acc[cols].
template <class T, bool kResidual, bool kWeightGrad>
RELAT_VECTOR_CLONES void rmsnorm_backward_row(const T *dy, const T *x, const T *w, float rstd,
                                              const T *ds_next, T *dx, float *acc, int64_t cols) {
  float dot = 0.f;
#pragma omp simd reduction(+ : dot)
  for (int64_t c = 0; c < cols; ++c) dot += to_f32(dy[c]) * to_f32(w[c]) * to_f32(x[c]);
  const float k = dot * rstd * rstd * rstd / float(cols);
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    const float g = to_f32(dy[c]), xv = to_f32(x[c]);
    float v = rstd * to_f32(w[c]) * g - k * xv;
    if constexpr (kResidual) v += to_f32(ds_next[c]);
    if constexpr (kWeightGrad) acc[c] += g * xv * rstd;
    store_f32(dx + c, v);
  }
}

RELAT_VECTOR_CLONES void zero_f32(float *p, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) p[i] = 0.f;
}

// dweight[c] = sum_p ws[p, c] for c in [c0, c1), p in fixed order.
RELAT_VECTOR_CLONES void sum_partials(const float *ws, int64_t parts, int64_t cols, int64_t c0,
                                      int64_t c1, float *dweight) {
#pragma omp simd
  for (int64_t c = c0; c < c1; ++c) dweight[c] = ws[c];
  for (int64_t p = 1; p < parts; ++p) {
    const float *wp = ws + p * cols;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) dweight[c] += wp[c];
  }
}

template <class T, bool kResidual>
relat_status backward_impl(const T *dy, const T *ds_next, const T *x, const T *w, const float *rstd,
                           T *dx, float *dweight, float *ws, int64_t rows, int64_t cols) {
  const bool parallel = rows * cols >= kParallelMinElements;
  if (!dweight) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r)
      rmsnorm_backward_row<T, kResidual, false>(dy + r * cols, x + r * cols, w, rstd[r],
                                                kResidual ? ds_next + r * cols : nullptr,
                                                dx + r * cols, nullptr, cols);
    return RELAT_OK;
  }
  const int64_t parts = weight_grad_chunks(rows);
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t p = 0; p < parts; ++p) {
      float *acc = ws + p * cols;
      zero_f32(acc, cols);
      const int64_t r0 = rows * p / parts, r1 = rows * (p + 1) / parts;
      for (int64_t r = r0; r < r1; ++r)
        rmsnorm_backward_row<T, kResidual, true>(dy + r * cols, x + r * cols, w, rstd[r],
                                                 kResidual ? ds_next + r * cols : nullptr,
                                                 dx + r * cols, acc, cols);
    }
    // Implicit barrier above: every partial is complete.
    constexpr int64_t kColBlock = 256;
    const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      sum_partials(ws, parts, cols, b * kColBlock, std::min(cols, (b + 1) * kColBlock), dweight);
  }
  return RELAT_OK;
}

int64_t workspace_bytes_for(int64_t rows, int64_t cols) {
  return weight_grad_chunks(rows) * cols * int64_t(sizeof(float));
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_rmsnorm_forward(const void *x, const void *weight, void *y,
                                                  float *rstd, int64_t rows, int64_t cols, float eps,
                                                  relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::rmsnorm_forward(x, weight, y, rows, cols, eps, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "rmsnorm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *ws = static_cast<const T *>(weight);
    T *ys = static_cast<T *>(y);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      rmsnorm_row(xs + r * cols, ws, ys + r * cols, rstd ? rstd + r : nullptr, cols, eps);
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_add_rmsnorm_forward(const void *x, const void *r, void *s,
                                                      const void *weight, void *y, float *rstd,
                                                      int64_t rows, int64_t cols, float eps,
                                                      relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::add_rmsnorm_forward(x, r, s, weight, y, rows, cols, eps, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "add_rmsnorm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *rs = static_cast<const T *>(r);
    T *ss = static_cast<T *>(s);
    const T *ws = static_cast<const T *>(weight);
    T *ys = static_cast<T *>(y);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t i = 0; i < rows; ++i)
      add_rmsnorm_row(xs + i * cols, rs + i * cols, ss + i * cols, ws, ys + i * cols,
                      rstd ? rstd + i : nullptr, cols, eps);
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols,
                                                                   int64_t *bytes) {
  if (auto m = relat::validate::rmsnorm_backward_workspace_bytes(rows, cols, bytes); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = workspace_bytes_for(rows, cols);
  return RELAT_OK;
}

namespace {
relat_status backward_entry(const char *op, bool residual, const void *dy, const void *ds_next,
                            const void *x, const void *weight, const float *rstd, void *dx,
                            float *dweight, void *workspace, int64_t workspace_bytes, int64_t rows,
                            int64_t cols, relat_dtype dtype) {
  const int64_t needed = rows >= 0 && cols > 0 ? workspace_bytes_for(rows, cols) : 0;
  if (auto m = relat::validate::rmsnorm_backward(op, dy, ds_next, residual, x, weight, rstd, dx,
                                                 dweight, workspace, workspace_bytes, needed, rows,
                                                 cols, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) {
    if (dweight) std::fill(dweight, dweight + cols, 0.f);
    return RELAT_OK;
  }
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *dys = static_cast<const T *>(dy);
    const T *dns = static_cast<const T *>(ds_next);
    const T *xs = static_cast<const T *>(x);
    const T *ws = static_cast<const T *>(weight);
    T *dxs = static_cast<T *>(dx);
    float *part = static_cast<float *>(workspace);
    return residual ? backward_impl<T, true>(dys, dns, xs, ws, rstd, dxs, dweight, part, rows, cols)
                    : backward_impl<T, false>(dys, nullptr, xs, ws, rstd, dxs, dweight, part, rows,
                                              cols);
  });
}
}  // namespace

extern "C" relat_status relat_cpu_rmsnorm_backward(const void *dy, const void *x,
                                                   const void *weight, const float *rstd, void *dx,
                                                   float *dweight, void *workspace,
                                                   int64_t workspace_bytes, int64_t rows,
                                                   int64_t cols, relat_dtype dtype, relat_stream) {
  return backward_entry("rmsnorm_backward", false, dy, nullptr, x, weight, rstd, dx, dweight,
                        workspace, workspace_bytes, rows, cols, dtype);
}

extern "C" relat_status relat_cpu_add_rmsnorm_backward(const void *dy, const void *ds_next,
                                                       const void *s, const void *weight,
                                                       const float *rstd, void *ds, float *dweight,
                                                       void *workspace, int64_t workspace_bytes,
                                                       int64_t rows, int64_t cols,
                                                       relat_dtype dtype, relat_stream) {
  return backward_entry("add_rmsnorm_backward", true, dy, ds_next, s, weight, rstd, ds, dweight,
                        workspace, workspace_bytes, rows, cols, dtype);
}
