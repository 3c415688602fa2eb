// Latent step, CPU twin of kernels/latent_step.cu: the soft mode (LM head -> softmax/tau -> mix of
// embedding rows) forward and backward, and the row rescale of the realign and identity modes.
//
// Soft forward, fused: z = U h / tau, the online softmax over the vocabulary and the p-weighted sum
// of E rows happen in ONE pass over U and E (flash-attention style: per row of h a running max m,
// sum l and fp32 accumulator acc[d], rescaled when m grows), so the [batch, vocab] probabilities
// are never stored. The vocabulary is split across threads; each thread keeps its own (m, l, acc)
// and the partials are merged at the end.
// Soft backward, fused, also ONE pass over U and E: dh = sum_v p_v (g_v - sum_w p_w g_w) U_v / tau
// with g_v = E_v . de and p_v = exp(z_v - lse) recomputed from the saved lse. The centre s = e32 . de
// comes from the forward, but in fp32 the recomputed p does not sum g to exactly s (nor p to 1), and
// on a flat softmax whose rows share a direction that mismatch times sum_v p U_v reached 3e-2 of
// max |dh| (LatentStepTest's flat case; 2e-5 with the correction). So the sweep
// also accumulates ubar = sum p U_v, G = sum p g and P = sum p (G, P in fp64) and the end corrects
// with the self-consistent centre: dh = (sum p (g - s) U_v + (s - G / P) ubar) / (P tau).
// No [batch, vocab] tensor is stored in either direction.
// Accumulation over the vocabulary is two-level: fp32 over a block of kFlushTiles tiles (512 rows),
// then into fp64 running sums (acc, dh, ubar). A thread's share is ~76k rows at V = 151,936; summed
// in fp32 alone, its rounding was the engine's largest LoRA-gradient error on a flat softmax (e is
// a near-cancelling mean of random rows, and the next RMSNorm scales its error back up): 1.4e-4
// from fp64 where libtorch's blocked GEMV composition landed at 7e-6. The flush costs d adds per
// 512 rows.
// Floors (batch B, hidden d, vocab V, storage size S bytes): forward reads U and E once,
// 2 V d S bytes (V d S when tied: the E row is the U row just read, served from cache), FLOPs
// 4 B V d; backward the same bytes, FLOPs 8 B V d. For B = 1 both are bandwidth-bound.
// Extra memory: per thread B (d + 2) fp32 partials and B d fp64 sums (backward: B (2 d + 4) and
// 2 B d) plus tiles of z and g;
// O(threads B d), never O(V).
//
// Row rescale: y = x * target / max(||x||, min_norm) and its backward, one row per task, x read
// twice (norm, then scale; the second read hits cache). Bytes 2 rows cols S (+ cols S for dy).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu_common.h"
#include "cpu_simd.h"
#include "validate.h"

namespace relat::cpu {
namespace {

constexpr int64_t kTile = 32;        // vocabulary rows per tile
constexpr int64_t kFlushTiles = 16;  // tiles summed in fp32 before the fp64 running sums

// Threads worth using: each should get at least a few tiles.
int soft_threads(int64_t vocab) {
  const int64_t by_work = std::max<int64_t>(1, vocab / (8 * kTile));
  return int(std::min<int64_t>(omp_get_max_threads(), by_work));
}

// Workspace: h (and de) as fp32 rows, s, then per thread: partial state and the z/g tiles.
struct SoftLayout {
  int64_t hidden_ld = 0;  // fp32 row stride
  int64_t h32 = 0, de32 = 0, s = 0, per_thread = 0, thread_base = 0, total = 0;
  // Offsets inside one thread's region: m[B], l[B] (forward) or G[B], P[B] in fp64 (backward);
  // acc (forward) or dh (backward) [B][ld]; z and g tiles [kTile][B]; ubar [B][ld] (backward);
  // the fp64 running sums acc64 or dh64, and ubar64 (backward), [B][ld].
  int64_t state = 0, acc = 0, z = 0, g = 0, ubar = 0, acc64 = 0, ubar64 = 0;
};

SoftLayout soft_layout(int64_t batch, int64_t hidden, int threads, bool backward) {
  SoftLayout L;
  L.hidden_ld = round_up(hidden, 16);
  const int64_t row_bytes = batch * L.hidden_ld * 4;
  WorkspaceCarver w;
  L.h32 = w.take(row_bytes);
  L.de32 = backward ? w.take(row_bytes) : w.end;
  L.s = backward ? w.take(batch * 4) : w.end;
  WorkspaceCarver t;
  L.state = t.take(2 * batch * 8);
  L.acc = t.take(row_bytes);
  L.z = t.take(kTile * batch * 4);
  L.g = t.take(kTile * batch * 4);
  L.ubar = backward ? t.take(row_bytes) : t.end;
  L.acc64 = t.take(2 * row_bytes);
  L.ubar64 = backward ? t.take(2 * row_bytes) : t.end;
  L.per_thread = t.end;
  L.thread_base = w.take(threads * L.per_thread);
  L.total = batch > 0 ? w.total() : 0;
  return L;
}

// out[j * batch + b] = scale * (w[j] . x[b]) for NB consecutive rows b0.. of x (ld ldx).
// One pass over the w row serves the NB dot products; with NB = 1 the sum is split over four
// accumulators so the FMA latency does not bound a bandwidth-bound loop.
template <int NB, class T>
RELAT_INLINE void dots_rows(const T *wr, const float *x, int64_t ldx, int64_t hidden, float scale,
                            float *o) {
  if constexpr (NB == 1) {
    v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
    int64_t k = 0;
    for (; k + 32 <= hidden; k += 32) {
      a0 += load8_f32(wr + k) * load8(x + k);
      a1 += load8_f32(wr + k + 8) * load8(x + k + 8);
      a2 += load8_f32(wr + k + 16) * load8(x + k + 16);
      a3 += load8_f32(wr + k + 24) * load8(x + k + 24);
    }
    for (; k + 8 <= hidden; k += 8) a0 += load8_f32(wr + k) * load8(x + k);
    float sum = hsum8((a0 + a1) + (a2 + a3));
    for (; k < hidden; ++k) sum += to_f32(wr[k]) * x[k];
    o[0] = sum * scale;
  } else {
    v8f a[NB] = {};
    int64_t k = 0;
    for (; k + 8 <= hidden; k += 8) {
      const v8f wv = load8_f32(wr + k);
      for (int b = 0; b < NB; ++b) a[b] += wv * load8(x + b * ldx + k);
    }
    for (int b = 0; b < NB; ++b) {
      float sum = hsum8(a[b]);
      for (int64_t q = k; q < hidden; ++q) sum += to_f32(wr[q]) * x[b * ldx + q];
      o[b] = sum * scale;
    }
  }
}

// out[j][b] = scale * (w[j] . x[b]) for j < nj, every b (out has stride batch per j).
template <class T>
RELAT_INLINE void dots(const T *w, int64_t nj, const float *x, int64_t ldx, int64_t batch,
                       int64_t hidden, float scale, float *out) {
  for (int64_t j = 0; j < nj; ++j) {
    const T *wr = w + j * hidden;
    for (int64_t b0 = 0; b0 < batch; b0 += 4) {
      const float *xb = x + b0 * ldx;
      float *o = out + j * batch + b0;
      switch (std::min<int64_t>(4, batch - b0)) {
        case 1: dots_rows<1>(wr, xb, ldx, hidden, scale, o); break;
        case 2: dots_rows<2>(wr, xb, ldx, hidden, scale, o); break;
        case 3: dots_rows<3>(wr, xb, ldx, hidden, scale, o); break;
        default: dots_rows<4>(wr, xb, ldx, hidden, scale, o); break;
      }
    }
  }
}

// acc[b] += sum_j coef[j][b] * w[v0 + j] for every b, four vocabulary rows at a time.
template <class T>
RELAT_INLINE void axpys(const T *w, int64_t nj, const float *coef, int64_t batch, int64_t hidden,
                        float *acc, int64_t ld) {
  int64_t j = 0;
  for (; j + 4 <= nj; j += 4) {
    const T *w0 = w + j * hidden, *w1 = w0 + hidden, *w2 = w1 + hidden, *w3 = w2 + hidden;
    for (int64_t b = 0; b < batch; ++b) {
      const float c0 = coef[j * batch + b], c1 = coef[(j + 1) * batch + b],
                  c2 = coef[(j + 2) * batch + b], c3 = coef[(j + 3) * batch + b];
      float *a = acc + b * ld;
      int64_t k = 0;
      for (; k + 8 <= hidden; k += 8)
        store8(a + k, load8(a + k) + c0 * load8_f32(w0 + k) + c1 * load8_f32(w1 + k) +
                          c2 * load8_f32(w2 + k) + c3 * load8_f32(w3 + k));
      for (; k < hidden; ++k)
        a[k] += c0 * to_f32(w0[k]) + c1 * to_f32(w1[k]) + c2 * to_f32(w2[k]) + c3 * to_f32(w3[k]);
    }
  }
  for (; j < nj; ++j) {
    const T *wr = w + j * hidden;
    for (int64_t b = 0; b < batch; ++b) {
      const float c = coef[j * batch + b];
      float *a = acc + b * ld;
      int64_t k = 0;
      for (; k + 8 <= hidden; k += 8) store8(a + k, load8(a + k) + c * load8_f32(wr + k));
      for (; k < hidden; ++k) a[k] += c * to_f32(wr[k]);
    }
  }
}

// sum64 += block; block = 0 (the fp32 block sum moves into the fp64 running sum).
RELAT_INLINE void flush(float *block, double *sum64, int64_t n) {
  for (int64_t k = 0; k < n; ++k) sum64[k] += block[k], block[k] = 0.f;
}

// One thread's share of the soft forward: vocabulary rows [v_begin, v_end).
template <class T>
RELAT_VECTOR_CLONES void soft_forward_range(const T *u, const T *emb, const float *h32, int64_t ld,
                                            int64_t batch, int64_t hidden, float inv_tau,
                                            int64_t v_begin, int64_t v_end, float *m, float *l,
                                            float *acc, double *acc64, float *z) {
  for (int64_t b = 0; b < batch; ++b) {
    m[b] = -std::numeric_limits<float>::infinity();
    l[b] = 0.f;
  }
  for (int64_t k = 0; k < batch * ld; ++k) acc[k] = 0.f, acc64[k] = 0.0;
  int64_t tiles = 0;
  for (int64_t v0 = v_begin; v0 < v_end; v0 += kTile) {
    const int64_t nj = std::min(kTile, v_end - v0);
    dots(u + v0 * hidden, nj, h32, ld, batch, hidden, inv_tau, z);
    for (int64_t b = 0; b < batch; ++b) {
      float mx = m[b];
      for (int64_t j = 0; j < nj; ++j) mx = std::max(mx, z[j * batch + b]);
      if (mx > m[b]) {  // rescale the running sums to the new max
        const float alpha = exp_f32(m[b] - mx);  // 0 on the first tile (m = -inf)
        l[b] *= alpha;
        float *a = acc + b * ld;
        double *a64 = acc64 + b * ld;
        for (int64_t k = 0; k < hidden; ++k) a[k] *= alpha, a64[k] *= alpha;
        m[b] = mx;
      }
      float sum = 0.f;
      for (int64_t j = 0; j < nj; ++j) {
        const float p = exp_f32(z[j * batch + b] - mx);
        z[j * batch + b] = p;
        sum += p;
      }
      l[b] += sum;
    }
    axpys(emb + v0 * hidden, nj, z, batch, hidden, acc, ld);
    if (++tiles % kFlushTiles == 0 || v0 + kTile >= v_end) flush(acc, acc64, batch * ld);
  }
}

// One thread's share of the soft backward over [v_begin, v_end): dh[b] += sum_v p (g - s) U_v,
// ubar[b] += sum_v p U_v, G[b] += sum_v p g, P[b] += sum_v p.
template <class T>
RELAT_VECTOR_CLONES void soft_backward_range(const T *u, const T *emb, const float *h32,
                                             const float *de32, const float *lse, const float *s,
                                             int64_t ld, int64_t batch, int64_t hidden,
                                             float inv_tau, int64_t v_begin, int64_t v_end,
                                             float *dh, float *ubar, double *dh64, double *ubar64,
                                             double *G, double *P, float *z, float *g) {
  for (int64_t k = 0; k < batch * ld; ++k) dh[k] = ubar[k] = 0.f, dh64[k] = ubar64[k] = 0.0;
  for (int64_t b = 0; b < batch; ++b) G[b] = P[b] = 0.0;
  int64_t tiles = 0;
  for (int64_t v0 = v_begin; v0 < v_end; v0 += kTile) {
    const int64_t nj = std::min(kTile, v_end - v0);
    dots(u + v0 * hidden, nj, h32, ld, batch, hidden, inv_tau, z);
    dots(emb + v0 * hidden, nj, de32, ld, batch, hidden, 1.f, g);
    for (int64_t b = 0; b < batch; ++b) {
      float gsum = 0.f, psum = 0.f;  // per tile in fp32, across tiles in fp64
      for (int64_t j = 0; j < nj; ++j) {
        const int64_t q = j * batch + b;
        const float p = exp_f32(z[q] - lse[b]);
        gsum += p * g[q];
        psum += p;
        z[q] = p * (g[q] - s[b]);
        g[q] = p;
      }
      G[b] += gsum;
      P[b] += psum;
    }
    axpys(u + v0 * hidden, nj, z, batch, hidden, dh, ld);
    axpys(u + v0 * hidden, nj, g, batch, hidden, ubar, ld);  // the U tile is still in cache
    if (++tiles % kFlushTiles == 0 || v0 + kTile >= v_end) {
      flush(dh, dh64, batch * ld);
      flush(ubar, ubar64, batch * ld);
    }
  }
}

template <class T>
RELAT_VECTOR_CLONES void rows_to_f32(const T *src, float *dst, int64_t rows, int64_t cols,
                                     int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    to_f32_row(src + r * cols, dst + r * ld, cols);
    for (int64_t k = cols; k < ld; ++k) dst[r * ld + k] = 0.f;
  }
}

struct Split {
  int threads;
  int64_t chunk;
};

Split split_vocab(int64_t vocab, int threads) {
  int64_t chunk = round_up((vocab + threads - 1) / threads, kTile);
  return {int((vocab + chunk - 1) / chunk), chunk};
}

template <class T>
relat_status soft_forward(const T *h, const T *u, const T *emb, T *e, float *lse, float *e32,
                          int64_t batch, int64_t hidden, int64_t vocab, float inv_tau, char *ws,
                          int threads) {
  const SoftLayout L = soft_layout(batch, hidden, threads, false);
  const int64_t ld = L.hidden_ld;
  float *h32 = reinterpret_cast<float *>(ws + L.h32);
  rows_to_f32(h, h32, batch, hidden, ld);
  const Split sp = split_vocab(vocab, threads);
  struct Part {
    float *m, *l, *acc, *z;
    double *acc64;
  };
  auto part = [&](int t) {
    char *base = ws + L.thread_base + t * L.per_thread;
    Part q;
    q.m = reinterpret_cast<float *>(base + L.state);
    q.l = q.m + batch;
    q.acc = reinterpret_cast<float *>(base + L.acc);
    q.z = reinterpret_cast<float *>(base + L.z);
    q.acc64 = reinterpret_cast<double *>(base + L.acc64);
    return q;
  };
#pragma omp parallel for num_threads(sp.threads) schedule(static, 1)
  for (int t = 0; t < sp.threads; ++t) {
    const Part q = part(t);
    const int64_t v0 = t * sp.chunk, v1 = std::min(vocab, v0 + sp.chunk);
    soft_forward_range(u, emb, h32, ld, batch, hidden, inv_tau, v0, v1, q.m, q.l, q.acc, q.acc64,
                       q.z);
  }
  // Merge the per-thread partials into thread 0's fp64 accumulator.
  for (int64_t b = 0; b < batch; ++b) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < sp.threads; ++t) mx = std::max(mx, part(t).m[b]);
    double total = 0.0;
    for (int t = 0; t < sp.threads; ++t) total += double(part(t).l[b]) * exp_f32(part(t).m[b] - mx);
    double *a0 = part(0).acc64 + b * ld;
    const double w0 = exp_f32(part(0).m[b] - mx) / total;
    for (int64_t k = 0; k < hidden; ++k) a0[k] *= w0;
    for (int t = 1; t < sp.threads; ++t) {
      const Part q = part(t);
      const double wt = exp_f32(q.m[b] - mx) / total;
      const double *at = q.acc64 + b * ld;
      for (int64_t k = 0; k < hidden; ++k) a0[k] += wt * at[k];
    }
    if (lse) lse[b] = float(mx + std::log(total));
    for (int64_t k = 0; k < hidden; ++k) e[b * hidden + k] = from_f32<T>(float(a0[k]));
    if (e32)
      for (int64_t k = 0; k < hidden; ++k) e32[b * hidden + k] = float(a0[k]);
  }
  return RELAT_OK;
}

template <class T>
relat_status soft_backward(const T *h, const T *u, const T *emb, const float *lse, const float *e32,
                           const T *de, T *dh, int64_t batch, int64_t hidden, int64_t vocab,
                           float inv_tau, char *ws, int threads) {
  const SoftLayout L = soft_layout(batch, hidden, threads, true);
  const int64_t ld = L.hidden_ld;
  float *h32 = reinterpret_cast<float *>(ws + L.h32);
  float *de32 = reinterpret_cast<float *>(ws + L.de32);
  float *s = reinterpret_cast<float *>(ws + L.s);
  rows_to_f32(h, h32, batch, hidden, ld);
  rows_to_f32(de, de32, batch, hidden, ld);
  for (int64_t b = 0; b < batch; ++b) {  // s = sum_v p g = e . de, from the forward's fp32 e
    double acc = 0.0;
    for (int64_t k = 0; k < hidden; ++k) acc += double(e32[b * hidden + k]) * de32[b * ld + k];
    s[b] = float(acc);
  }
  const Split sp = split_vocab(vocab, threads);
  struct Part {
    double *G, *P, *dh64, *ubar64;
    float *dh, *z, *g, *ubar;
  };
  auto part = [&](int t) {
    char *base = ws + L.thread_base + t * L.per_thread;
    Part q;
    q.G = reinterpret_cast<double *>(base + L.state);
    q.P = q.G + batch;
    q.dh = reinterpret_cast<float *>(base + L.acc);
    q.z = reinterpret_cast<float *>(base + L.z);
    q.g = reinterpret_cast<float *>(base + L.g);
    q.ubar = reinterpret_cast<float *>(base + L.ubar);
    q.dh64 = reinterpret_cast<double *>(base + L.acc64);
    q.ubar64 = reinterpret_cast<double *>(base + L.ubar64);
    return q;
  };
#pragma omp parallel for num_threads(sp.threads) schedule(static, 1)
  for (int t = 0; t < sp.threads; ++t) {
    const Part q = part(t);
    const int64_t v0 = t * sp.chunk, v1 = std::min(vocab, v0 + sp.chunk);
    soft_backward_range(u, emb, h32, de32, lse, s, ld, batch, hidden, inv_tau, v0, v1, q.dh, q.ubar,
                        q.dh64, q.ubar64, q.G, q.P, q.z, q.g);
  }
  const Part q0 = part(0);
  for (int t = 1; t < sp.threads; ++t) {
    const Part q = part(t);
    for (int64_t k = 0; k < batch * ld; ++k) {
      q0.dh64[k] += q.dh64[k];
      q0.ubar64[k] += q.ubar64[k];
    }
    for (int64_t b = 0; b < batch; ++b) {
      q0.G[b] += q.G[b];
      q0.P[b] += q.P[b];
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    const double shift = double(s[b]) - q0.G[b] / q0.P[b];
    const double scale = double(inv_tau) / q0.P[b];
    const double *d = q0.dh64 + b * ld, *ub = q0.ubar64 + b * ld;
    for (int64_t k = 0; k < hidden; ++k)
      dh[b * hidden + k] = from_f32<T>(float((d[k] + shift * ub[k]) * scale));
  }
  return RELAT_OK;
}

// ---- row rescale ----

template <class T>
RELAT_VECTOR_CLONES void rescale_row(const T *x, T *y, int64_t cols, float target, float min_norm) {
  float ss = 0.f;
#pragma omp simd reduction(+ : ss)
  for (int64_t c = 0; c < cols; ++c) ss += to_f32(x[c]) * to_f32(x[c]);
  const float scale = target / std::max(std::sqrt(ss), min_norm);
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] = from_f32<T>(to_f32(x[c]) * scale);
}

template <class T>
RELAT_VECTOR_CLONES void rescale_row_backward(const T *x, const T *dy, T *dx, int64_t cols,
                                              float target, float min_norm) {
  float ss = 0.f, xd = 0.f;
#pragma omp simd reduction(+ : ss, xd)
  for (int64_t c = 0; c < cols; ++c) {
    const float xv = to_f32(x[c]);
    ss += xv * xv;
    xd += xv * to_f32(dy[c]);
  }
  const float n = std::sqrt(ss);
  if (n >= min_norm) {
    const float a = target / n, b = a * xd / (n * n);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) dx[c] = from_f32<T>(a * to_f32(dy[c]) - b * to_f32(x[c]));
  } else {
    const float a = target / min_norm;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) dx[c] = from_f32<T>(a * to_f32(dy[c]));
  }
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_latent_soft_workspace_bytes(int64_t batch, int64_t hidden,
                                                              int64_t vocab, relat_dtype dtype,
                                                              int64_t *forward_bytes,
                                                              int64_t *backward_bytes) {
  if (auto m = relat::validate::latent_soft_workspace_bytes(batch, hidden, vocab, dtype,
                                                            forward_bytes, backward_bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  const int threads = soft_threads(vocab);
  *forward_bytes = soft_layout(batch, hidden, threads, false).total;
  *backward_bytes = soft_layout(batch, hidden, threads, true).total;
  return RELAT_OK;
}

extern "C" relat_status relat_cpu_latent_soft_forward(const void *h, const void *u, const void *emb,
                                                      void *e, float *lse, float *e32, int64_t batch,
                                                      int64_t hidden, int64_t vocab, float inv_tau,
                                                      void *workspace, int64_t workspace_bytes,
                                                      relat_dtype dtype, relat_stream) {
  const char *op = "latent_soft_forward";
  if (auto m = relat::validate::latent_soft_forward(h, u, emb, e, batch, hidden, vocab, inv_tau,
                                                    dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  const int threads = soft_threads(vocab);
  const int64_t need = soft_layout(batch, hidden, threads, false).total;
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes, need); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (batch == 0) return RELAT_OK;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return soft_forward(static_cast<const T *>(h), static_cast<const T *>(u),
                        static_cast<const T *>(emb), static_cast<T *>(e), lse, e32, batch, hidden,
                        vocab, inv_tau, aligned(workspace), threads);
  });
}

extern "C" relat_status relat_cpu_latent_soft_backward(const void *h, const void *u, const void *emb,
                                                       const float *lse, const float *e32,
                                                       const void *de, void *dh, int64_t batch,
                                                       int64_t hidden, int64_t vocab, float inv_tau,
                                                       void *workspace, int64_t workspace_bytes,
                                                       relat_dtype dtype, relat_stream) {
  const char *op = "latent_soft_backward";
  if (auto m = relat::validate::latent_soft_backward(h, u, emb, lse, e32, de, dh, batch, hidden,
                                                     vocab, inv_tau, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  const int threads = soft_threads(vocab);
  const int64_t need = soft_layout(batch, hidden, threads, true).total;
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes, need); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (batch == 0) return RELAT_OK;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return soft_backward(static_cast<const T *>(h), static_cast<const T *>(u),
                         static_cast<const T *>(emb), lse, e32, static_cast<const T *>(de),
                         static_cast<T *>(dh), batch, hidden, vocab, inv_tau, aligned(workspace),
                         threads);
  });
}

extern "C" relat_status relat_cpu_row_rescale_forward(const void *x, void *y, int64_t rows,
                                                      int64_t cols, float target_norm,
                                                      float min_norm, relat_dtype dtype,
                                                      relat_stream) {
  const char *op = "row_rescale_forward";
  if (auto m = relat::validate::row_rescale(op, x, nullptr, y, rows, cols, target_norm, min_norm,
                                            dtype, false);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    T *ys = static_cast<T *>(y);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      rescale_row(xs + r * cols, ys + r * cols, cols, target_norm, min_norm);
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_row_rescale_backward(const void *x, const void *dy, void *dx,
                                                       int64_t rows, int64_t cols,
                                                       float target_norm, float min_norm,
                                                       relat_dtype dtype, relat_stream) {
  const char *op = "row_rescale_backward";
  if (auto m = relat::validate::row_rescale(op, x, dy, dx, rows, cols, target_norm, min_norm, dtype,
                                            true);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *dys = static_cast<const T *>(dy);
    T *dxs = static_cast<T *>(dx);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      rescale_row_backward(xs + r * cols, dys + r * cols, dxs + r * cols, cols, target_norm,
                           min_norm);
    return RELAT_OK;
  });
}
