// Segmented LoRA (one adapter per question, S-LoRA / Punica): CPU twin of
// kernels/lora_segmented.cu.
//
// Every row's forward (and its rows of G, U and dx in the backward) is computed by one thread from
// that row and its segment's adapter only, in a fixed order: the result cannot depend on the other
// segments, on the thread count or on where the row sits. The weight gradients reduce over a
// segment's rows in row order, the threads splitting the columns of da / db (never the rows), so
// they are as deterministic.
// forward, per row: u = a[s] x (rank dot products of length in, four at a time on the fp32 copy of
// x), then y[j] += round(scale * b[s][j, :] . u), b's rows read contiguously (rank floats each).
// backward: pass 1 per row: G = dy b[s] (b's rows streamed once, G in vector registers), U = a[s]
// x, dx += round(scale * G a[s]); pass 2 per (segment, 64 columns of da or db): sums over the
// segment's rows into a [rank, 64] fp32 tile.
// Floors (S = sizeof(storage), n = rows): forward bytes n*(in + 2*out)*S + adapters read,
// FLOPs 2*n*rank*(in + out); backward FLOPs 4*n*rank*(in + out) (+ 2*n*rank*in for dx).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu_common.h"
#include "cpu_simd.h"
#include "validate.h"

namespace relat::cpu {
namespace {

constexpr int64_t kColumnTile = 64;  // columns of da / db per work item
constexpr int kMaxRank = RELAT_LORA_MAX_RANK;

// The segment of row t: the last s with offsets[s] <= t among nonempty segments.
inline int64_t segment_of(const int64_t *offsets, int64_t segments, int64_t t) {
  return (std::upper_bound(offsets, offsets + segments + 1, t) - offsets) - 1;
}

// u[k] = sum_c xf[c] * a[k, c] for k < rank; four rows of a per pass over xf.
RELAT_VECTOR_CLONES void shrink_row(const float *xf, const float *a, int64_t in, int64_t rank,
                                    float *u) {
  int64_t k = 0;
  for (; k + 4 <= rank; k += 4) {
    const float *a0 = a + k * in, *a1 = a0 + in, *a2 = a1 + in, *a3 = a2 + in;
    v8f s0 = splat8(0.f), s1 = s0, s2 = s0, s3 = s0;
    int64_t c = 0;
    for (; c + 8 <= in; c += 8) {
      const v8f xv = load8(xf + c);
      s0 += xv * load8(a0 + c);
      s1 += xv * load8(a1 + c);
      s2 += xv * load8(a2 + c);
      s3 += xv * load8(a3 + c);
    }
    float t0 = hsum8(s0), t1 = hsum8(s1), t2 = hsum8(s2), t3 = hsum8(s3);
    for (; c < in; ++c) {
      t0 += xf[c] * a0[c];
      t1 += xf[c] * a1[c];
      t2 += xf[c] * a2[c];
      t3 += xf[c] * a3[c];
    }
    u[k] = t0;
    u[k + 1] = t1;
    u[k + 2] = t2;
    u[k + 3] = t3;
  }
  for (; k < rank; ++k) {
    const float *ak = a + k * in;
    v8f s = splat8(0.f);
    int64_t c = 0;
    for (; c + 8 <= in; c += 8) s += load8(xf + c) * load8(ak + c);
    float t = hsum8(s);
    for (; c < in; ++c) t += xf[c] * ak[c];
    u[k] = t;
  }
}

// y[j] = round(y[j] + round(scale * b[j, :] . u)) for j < out.
template <class T>
RELAT_VECTOR_CLONES void expand_row(const float *u, const float *b, int64_t out, int64_t rank,
                                    float scale, T *y) {
  const int64_t r8 = rank / 8 * 8;
  for (int64_t j = 0; j < out; ++j) {
    const float *bj = b + j * rank;
    v8f s = splat8(0.f);
    for (int64_t k = 0; k < r8; k += 8) s += load8(bj + k) * load8(u + k);
    float d = hsum8(s);
    for (int64_t k = r8; k < rank; ++k) d += bj[k] * u[k];
    y[j] = from_f32<T>(to_f32(y[j]) + to_f32(from_f32<T>(scale * d)));
  }
}

// g[k] = sum_j dy[j] * b[j, k] for k < rank (g: kMaxRank floats), b's rows in order.
template <class T>
RELAT_VECTOR_CLONES void gradient_row(const T *dy, const float *b, int64_t out, int64_t rank,
                                      float *g) {
  constexpr int kVecs = kMaxRank / 8;
  v8f acc[kVecs];
  for (int v = 0; v < kVecs; ++v) acc[v] = splat8(0.f);
  const int64_t r8 = rank / 8 * 8;
  float tail[8] = {};
  for (int64_t j = 0; j < out; ++j) {
    const float d = to_f32(dy[j]);
    const v8f dv = splat8(d);
    const float *bj = b + j * rank;
    for (int64_t v = 0; v < r8 / 8; ++v) acc[v] += dv * load8(bj + 8 * v);
    for (int64_t k = r8; k < rank; ++k) tail[k - r8] += d * bj[k];
  }
  for (int64_t v = 0; v < r8 / 8; ++v) store8(g + 8 * v, acc[v]);
  for (int64_t k = r8; k < rank; ++k) g[k] = tail[k - r8];
}

// dx[c] = round(dx[c] + round(scale * sum_k g[k] a[k, c])); tmp: in floats.
template <class T>
RELAT_VECTOR_CLONES void input_gradient_row(const float *g, const float *a, int64_t in,
                                            int64_t rank, float scale, float *tmp, T *dx) {
  std::fill(tmp, tmp + in, 0.f);
  for (int64_t k = 0; k < rank; ++k) {
    const float *ak = a + k * in;
    const v8f gv = splat8(g[k]);
    int64_t c = 0;
    for (; c + 8 <= in; c += 8) store8(tmp + c, load8(tmp + c) + gv * load8(ak + c));
    for (; c < in; ++c) tmp[c] += g[k] * ak[c];
  }
  for (int64_t c = 0; c < in; ++c)
    dx[c] = from_f32<T>(to_f32(dx[c]) + to_f32(from_f32<T>(scale * tmp[c])));
}

// acc[k, c] = sum over rows t in [t0, t1) of coef[t, k] * v[t, c0 + c], c < width <= kColumnTile,
// rows in order; coef: [rows, rank] fp32, v: [rows, ld] in T.
template <class T>
RELAT_VECTOR_CLONES void column_tile(const float *coef, int64_t rank, const T *v, int64_t ld,
                                     int64_t t0, int64_t t1, int64_t c0, int64_t width,
                                     float *acc) {
  std::fill(acc, acc + rank * kColumnTile, 0.f);
  float vf[kColumnTile] = {};
  for (int64_t t = t0; t < t1; ++t) {
    const T *vt = v + t * ld + c0;
    for (int64_t c = 0; c < width; ++c) vf[c] = to_f32(vt[c]);
    const float *ct = coef + t * rank;
    for (int64_t k = 0; k < rank; ++k) {
      const v8f cv = splat8(ct[k]);
      float *ak = acc + k * kColumnTile;
      for (int64_t c = 0; c < kColumnTile; c += 8)
        store8(ak + c, load8(ak + c) + cv * load8(vf + c));
    }
  }
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_lora_segmented_forward(const void *x, const float *a,
                                                         const float *b, const int64_t *offsets,
                                                         int64_t segments, int64_t rows, int64_t in,
                                                         int64_t out, int64_t rank, float scale,
                                                         void *y, relat_dtype dtype, relat_stream) {
  const char *op = "lora_segmented_forward";
  if (auto m = relat::validate::lora_segmented(op, false, x, nullptr, a, b, offsets, segments, rows,
                                               in, out, rank, scale, y, nullptr, nullptr, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (auto m = relat::validate::lora_offsets(op, offsets, segments, rows); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    T *ys = static_cast<T *>(y);
#pragma omp parallel if (rows * rank * (in + out) >= kParallelMinElements)
    {
      static thread_local std::vector<float> xf;
      if (xf.size() < size_t(in)) xf.resize(size_t(in));
      alignas(32) float u[kMaxRank];
#pragma omp for schedule(static)
      for (int64_t t = 0; t < rows; ++t) {
        const int64_t s = segment_of(offsets, segments, t);
        to_f32_row(xs + t * in, xf.data(), in);
        shrink_row(xf.data(), a + s * rank * in, in, rank, u);
        expand_row(u, b + s * out * rank, out, rank, scale, ys + t * out);
      }
    }
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_lora_segmented_backward(
    const void *x, const void *dy, const float *a, const float *b, const int64_t *offsets,
    int64_t segments, int64_t rows, int64_t in, int64_t out, int64_t rank, float scale, float *da,
    float *db, void *dx, relat_dtype dtype, relat_stream) {
  const char *op = "lora_segmented_backward";
  if (auto m = relat::validate::lora_segmented(op, true, x, dy, a, b, offsets, segments, rows, in,
                                               out, rank, scale, nullptr, da, db, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (auto m = relat::validate::lora_offsets(op, offsets, segments, rows); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *dys = static_cast<const T *>(dy);
    T *dxs = static_cast<T *>(dx);
    // G and U of every row, kept per calling thread (no allocation once grown).
    static thread_local std::vector<float> gu;
    if (gu.size() < size_t(2 * rows * rank)) gu.resize(size_t(2 * rows * rank));
    float *g = gu.data(), *u = g + rows * rank;
    const bool parallel = rows * rank * (in + out) >= kParallelMinElements;
#pragma omp parallel if (parallel)
    {
      static thread_local std::vector<float> xf;
      if (xf.size() < size_t(in)) xf.resize(size_t(in));
      alignas(32) float gt[kMaxRank];
#pragma omp for schedule(static)
      for (int64_t t = 0; t < rows; ++t) {
        const int64_t s = segment_of(offsets, segments, t);
        const float *as = a + s * rank * in;
        gradient_row(dys + t * out, b + s * out * rank, out, rank, gt);
        std::copy(gt, gt + rank, g + t * rank);
        to_f32_row(xs + t * in, xf.data(), in);
        shrink_row(xf.data(), as, in, rank, u + t * rank);
        if (dxs) input_gradient_row(gt, as, in, rank, scale, xf.data(), dxs + t * in);
      }
      // Work items: per segment, the column tiles of da ([rank, in]) then of db ([out, rank],
      // whose columns are out).
      const int64_t tiles_in = (in + kColumnTile - 1) / kColumnTile;
      const int64_t tiles_out = (out + kColumnTile - 1) / kColumnTile;
      const int64_t items = segments * (tiles_in + tiles_out);
      alignas(32) float acc[kMaxRank * kColumnTile];
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t s = item / (tiles_in + tiles_out), tile = item % (tiles_in + tiles_out);
        const int64_t t0 = offsets[s], t1 = offsets[s + 1];
        if (t0 == t1) continue;
        if (tile < tiles_in) {  // da[s][k, c] += scale * sum_t G[t, k] x[t, c]
          const int64_t c0 = tile * kColumnTile, w = std::min(kColumnTile, in - c0);
          column_tile(g, rank, xs, in, t0, t1, c0, w, acc);
          float *das = da + s * rank * in;
          for (int64_t k = 0; k < rank; ++k)
            for (int64_t c = 0; c < w; ++c)
              das[k * in + c0 + c] += scale * acc[k * kColumnTile + c];
        } else {  // db[s][j, k] += scale * sum_t dy[t, j] U[t, k]
          const int64_t j0 = (tile - tiles_in) * kColumnTile, w = std::min(kColumnTile, out - j0);
          column_tile(u, rank, dys, out, t0, t1, j0, w, acc);
          float *dbs = db + s * out * rank;
          for (int64_t j = 0; j < w; ++j)
            for (int64_t k = 0; k < rank; ++k)
              dbs[(j0 + j) * rank + k] += scale * acc[k * kColumnTile + j];
        }
      }
    }
    return RELAT_OK;
  });
}
