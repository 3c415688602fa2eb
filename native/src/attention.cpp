// Training attention (causal with a shared prefix, grouped-query heads), forward and backward.
// CPU twin of kernels/attention.cu; semantics in relat.h.
//
// Rows are packed per KV head: packed row R = t * g + j is query token t of query head
// kvh * g + j (g = hq / hkv), so the g heads that share a KV head reuse each K/V tile. Row R sees
// keys 0 .. P + t.
//
// Forward: tasks = (KV head, block of 48 packed rows; 16 when there are no more, as for one query
// token), OpenMP-parallel. Per task the queries are converted once to fp32 (pre-scaled by
// scale*log2 e) and transposed; each key tile of 64 is converted to dense fp32 rows, then
// S^T = K Q^T, online softmax in base 2 down the columns and O += P V run on the 6x16
// register-blocked micro-kernels: no tile is transposed per task. Key tiles beyond the block's
// last visible key are skipped.
// Nothing of size [tq, tk] is ever materialised.
// Backward: pass 1 computes delta = rowsum(dout * out) per (query, head). Pass 2, tasks = (KV
// head, chunk of key blocks): per 64-key block the dK/dV accumulators stay in the task's fp32
// tiles while it walks the query blocks that see the block, recomputing P = exp2(S - lse) from
// the saved lse; dQ contributions go to one fp32 partial per key chunk (chunks interleave key
// blocks for balance; their number grows with the thread count when the workspace allows, and is
// 1 with dq itself as the accumulator when dq is fp32). Pass 3 sums the partials into dq.
// Floors (F = tq*hq*D, K = tk*hkv*D elements, s = sizeof(T), V = visible (query, key) pairs over
// all query heads = hq * (tq*P + tq*(tq+1)/2)):
//   forward  bytes >= (2F + 2K) s + 4 tq hq, FLOPs = 4 V D (+ exp per pair);
//   backward bytes >= (4F + 4K) s + 8 tq hq, FLOPs = 8 V D (+ recomputing S: 10 V D done here).
// Scratch lives on the stack: ~130 KiB per forward task, ~240 KiB per backward task (D = 128),
// within the 1 MiB of a Java thread and the 8 MiB of an OpenMP worker.
#include "attention_cpu.h"
#include "validate.h"

#include <omp.h>

namespace relat::cpu {
namespace {

using namespace attn;

constexpr int kRows = 48;   // packed query rows per forward task
constexpr int kRowsSmall = 16;  // ... when there are at most that many (Tq = 1: the g heads)
constexpr int kRowsB = 32;  // packed query rows per backward step

struct Shape {
  int64_t tq, tk, hq, hkv, g, P, rows, kv_stride;
  float c;  // scale * log2(e)
};

template <class T, int D, int kR>
RELAT_VECTOR_CLONES void forward_task(const T *q, const T *k, const T *v, T *out, float *lse,
                                      const Shape &sh, int64_t kvh, int64_t r0) {
  SoftmaxState<D, kR> st;
  alignas(64) float qt[D * kR];   // Q^T, pre-scaled, zero columns past the block's rows
  alignas(64) float kf[kBN * D];
  alignas(64) float vf[kBN * D];
  alignas(64) float s[kBN * kR];  // S^T, then P^T
  int64_t lim[kR];
  int lim_tile[kR];
  const int rows = int(std::min<int64_t>(kR, sh.rows - r0));
  std::fill(qt, qt + D * kR, 0.f);
  for (int r = 0; r < rows; ++r) {
    const int64_t row = r0 + r, t = row / sh.g, h = kvh * sh.g + row % sh.g;
    const T *qr = q + (t * sh.hq + h) * D;
    for (int d = 0; d < D; ++d) qt[d * kR + r] = to_f32(qr[d]) * sh.c;
    lim[r] = sh.P + t + 1;
  }
  for (int r = rows; r < kR; ++r) lim[r] = 0;
  st.reset(rows);
  const int64_t kend = lim[rows - 1];
  const T *kb = k + kvh * D, *vb = v + kvh * D;
  for (int64_t k0 = 0; k0 < kend; k0 += kBN) {
    const int nk = int(std::min<int64_t>(kBN, kend - k0));
    load_rows<T, D>(kb, sh.kv_stride, k0, nk, kf);
    load_rows<T, D>(vb, sh.kv_stride, k0, nk, vf);
    for (int r = 0; r < kR; ++r) lim_tile[r] = int(std::clamp<int64_t>(lim[r] - k0, 0, nk));
    attend_tile_keys_major<D, kR>(qt, rows, lim_tile, kf, vf, nk, s, st);
  }
  for (int r = 0; r < rows; ++r) {
    const int64_t row = r0 + r, t = row / sh.g, h = kvh * sh.g + row % sh.g;
    const float inv = 1.f / st.l[r];
    T *orow = out + (t * sh.hq + h) * D;
    for (int d = 0; d < D; ++d) orow[d] = from_f32<T>(st.o[r * D + d] * inv);
    lse[t * sh.hq + h] = (st.m[r] + std::log2(st.l[r])) * kLn2;
  }
}

// Pass 1: delta[t, h] = sum_d dout * out; zeroes the dq accumulator rows when asked.
template <class T, int D>
RELAT_VECTOR_CLONES void delta_rows(const T *dout, const T *out, float *delta, float *zero,
                                    int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int d = 0; d < D; ++d) acc += to_f32(dout[r * D + d]) * to_f32(out[r * D + d]);
    delta[r] = acc;
    if (zero) std::fill(zero + r * D, zero + (r + 1) * D, 0.f);
  }
}

// Scratch of one backward task, kept together so that it is one stack object.
template <int D> struct BackwardScratch {
  alignas(64) float kf[kBN * D];    // K tile [keys][D]
  alignas(64) float kt[D * kBN];    // K^T
  alignas(64) float vt[D * kBN];    // V^T
  alignas(64) float dk[kBN * D];    // accumulators
  alignas(64) float dv[kBN * D];
  alignas(64) float qf[kRowsB * D];   // Q rows (unscaled)
  alignas(64) float dof[kRowsB * D];  // dout rows
  alignas(64) float s[kRowsB * kBN];  // S, then dS (row-major)
  alignas(64) float dp[kRowsB * kBN];
  alignas(64) float pt[kBN * kRowsB];   // P^T
  alignas(64) float dst[kBN * kRowsB];  // dS^T
  alignas(64) float dq[kRowsB * D];
};

// Pass 2 for one key block [k0, k0 + nk) of KV head kvh: accumulates dk/dv of the block and adds
// the block's dq contributions to dq_acc (fp32, [tq, hq, D]).
template <class T, int D>
RELAT_VECTOR_CLONES void backward_block(const T *dout, const T *q, const T *k, const T *v,
                                        const float *lse, const float *delta, float *dq_acc, T *dk,
                                        T *dv, const Shape &sh, float scale, bool accumulate,
                                        int64_t kvh, int64_t k0) {
  BackwardScratch<D> w;
  const int nk = int(std::min<int64_t>(kBN, sh.tk - k0));
  for (int j = 0; j < kBN; ++j) {
    for (int d = 0; d < D; ++d) {
      float kv = 0.f, vv = 0.f;
      if (j < nk) {
        kv = to_f32(k[(k0 + j) * sh.kv_stride + kvh * D + d]);
        vv = to_f32(v[(k0 + j) * sh.kv_stride + kvh * D + d]);
      }
      w.kf[j * D + d] = kv;
      w.kt[d * kBN + j] = kv;
      w.vt[d * kBN + j] = vv;
    }
  }
  std::fill(w.dk, w.dk + kBN * D, 0.f);
  std::fill(w.dv, w.dv + kBN * D, 0.f);
  const int64_t t_first = std::max<int64_t>(0, k0 - sh.P);
  v8i iota;
  for (int i = 0; i < 8; ++i) iota[i] = i;
  for (int64_t r0 = t_first * sh.g; r0 < sh.rows; r0 += kRowsB) {
    const int rows = int(std::min<int64_t>(kRowsB, sh.rows - r0));
    int lim[kRowsB];
    float lse2[kRowsB], dlt[kRowsB];
    float *dq_row[kRowsB];
    for (int r = 0; r < rows; ++r) {
      const int64_t R = r0 + r, t = R / sh.g, h = kvh * sh.g + R % sh.g, row = t * sh.hq + h;
      for (int d = 0; d < D; ++d) {
        w.qf[r * D + d] = to_f32(q[row * D + d]);
        w.dof[r * D + d] = to_f32(dout[row * D + d]);
      }
      lse2[r] = lse[row] * kLog2e;
      dlt[r] = delta[row];
      lim[r] = int(std::clamp<int64_t>(sh.P + t + 1 - k0, 0, nk));
      dq_row[r] = dq_acc + row * D;
    }
    gemm<false>(rows, kBN, D, w.qf, D, w.kt, kBN, w.s, kBN);
    gemm<false>(rows, kBN, D, w.dof, D, w.vt, kBN, w.dp, kBN);
    for (int r = 0; r < rows; ++r) {
      float *sr = w.s + r * kBN;
      const float *dpr = w.dp + r * kBN;
      for (int j = 0; j < kBN; j += 8) {
        v8f p = exp2v(load8(sr + j) * sh.c - lse2[r]);
        p = (iota + j) < lim[r] ? p : v8f{};
        const v8f ds = p * (load8(dpr + j) - dlt[r]);
        store8(sr + j, ds);
        for (int i = 0; i < 8; ++i) {
          w.pt[(j + i) * kRowsB + r] = p[i];
          w.dst[(j + i) * kRowsB + r] = ds[i];
        }
      }
    }
    gemm<true>(nk, D, rows, w.pt, kRowsB, w.dof, D, w.dv, D);
    gemm<true>(nk, D, rows, w.dst, kRowsB, w.qf, D, w.dk, D);
    gemm<false>(rows, D, nk, w.s, kBN, w.kf, D, w.dq, D);
    for (int r = 0; r < rows; ++r) {
      float *dst = dq_row[r];
      const float *src = w.dq + r * D;
#pragma omp simd
      for (int d = 0; d < D; ++d) dst[d] += src[d] * scale;
    }
  }
  for (int j = 0; j < nk; ++j) {
    T *dkr = dk + ((k0 + j) * sh.hkv + kvh) * D;
    T *dvr = dv + ((k0 + j) * sh.hkv + kvh) * D;
    for (int d = 0; d < D; ++d) {
      float gk = w.dk[j * D + d] * scale, gv = w.dv[j * D + d];
      if (accumulate) {
        gk += to_f32(dkr[d]);
        gv += to_f32(dvr[d]);
      }
      dkr[d] = from_f32<T>(gk);
      dvr[d] = from_f32<T>(gv);
    }
  }
}

// Key chunks per KV head for the backward: enough tasks for the threads, at most one per block.
int64_t backward_chunks(int64_t tk, int64_t hkv) {
  const int64_t blocks = (tk + kBN - 1) / kBN;
  const int64_t threads = omp_get_max_threads();
  int64_t c = (threads + hkv - 1) / hkv;
  return std::max<int64_t>(1, std::min(c, blocks));
}

// Floats the backward wants for `chunks` dq partials (0 when dq is its own accumulator).
int64_t partial_floats(int64_t chunks, int64_t tq, int64_t hq, int64_t D, relat_dtype dtype) {
  if (chunks == 1 && dtype == RELAT_F32) return 0;
  return chunks * tq * hq * D;
}

template <class T, int D>
relat_status backward_impl(const T *dout, const T *q, const T *k, const T *v, const T *out,
                           const float *lse, T *dq, T *dk, T *dv, float *ws, int64_t ws_floats,
                           const Shape &sh, float scale, bool accumulate, relat_dtype dtype) {
  const int64_t F = sh.tq * sh.hq;  // (query, head) rows
  if (F == 0) {                     // no query: dk, dv get nothing (or keep their sum)
    if (!accumulate) {
      std::fill(dk, dk + sh.tk * sh.hkv * D, from_f32<T>(0.f));
      std::fill(dv, dv + sh.tk * sh.hkv * D, from_f32<T>(0.f));
    }
    return RELAT_OK;
  }
  float *delta = ws;
  int64_t chunks = backward_chunks(sh.tk, sh.hkv);
  while (chunks > 1 && F + partial_floats(chunks, sh.tq, sh.hq, D, dtype) > ws_floats) --chunks;
  const bool direct = partial_floats(chunks, sh.tq, sh.hq, D, dtype) == 0;
  float *partials = direct ? reinterpret_cast<float *>(dq) : ws + F;
  const int64_t row_block = 64;
#pragma omp parallel for schedule(static) if (F * D >= kParallelMinElements)
  for (int64_t r0 = 0; r0 < F; r0 += row_block) {
    const int64_t r1 = std::min(F, r0 + row_block);
    delta_rows<T, D>(dout, out, delta, partials, r0, r1);
    for (int64_t c = 1; c < chunks; ++c)
      std::fill(partials + (c * F + r0) * D, partials + (c * F + r1) * D, 0.f);
  }
  const int64_t blocks = (sh.tk + kBN - 1) / kBN;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t kvh = 0; kvh < sh.hkv; ++kvh) {
    for (int64_t c = 0; c < chunks; ++c) {
      float *acc = partials + c * F * D;
      for (int64_t b = c; b < blocks; b += chunks)
        backward_block<T, D>(dout, q, k, v, lse, delta, acc, dk, dv, sh, scale, accumulate, kvh,
                             b * kBN);
    }
  }
  if (!direct) {
#pragma omp parallel for schedule(static) if (F * D >= kParallelMinElements)
    for (int64_t i = 0; i < F * D; ++i) {
      float sum = partials[i];
      for (int64_t c = 1; c < chunks; ++c) sum += partials[c * F * D + i];
      dq[i] = from_f32<T>(sum);
    }
  }
  return RELAT_OK;
}

template <class Fn> relat_status dispatch_head_dim(int64_t head_dim, Fn &&fn) {
  if (head_dim == 64) return fn(std::integral_constant<int, 64>{});
  return fn(std::integral_constant<int, 128>{});
}

Shape make_shape(int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t kv_stride, float scale) {
  Shape sh;
  sh.tq = tq;
  sh.tk = tk;
  sh.hq = hq;
  sh.hkv = hkv;
  sh.g = hq / hkv;
  sh.P = tk - tq;
  sh.rows = tq * sh.g;
  sh.kv_stride = kv_stride;
  sh.c = scale * kLog2e;
  return sh;
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_attention_forward(const void *q, const void *k, const void *v,
                                                    void *out, float *lse, int64_t tq, int64_t tk,
                                                    int64_t hq, int64_t hkv, int64_t head_dim,
                                                    int64_t kv_stride, float scale,
                                                    relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::attention_forward(q, k, v, out, lse, tq, tk, hq, hkv, head_dim,
                                                  kv_stride, scale, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tq == 0) return RELAT_OK;
  const Shape sh = make_shape(tq, tk, hq, hkv, kv_stride, scale);
  return dispatch_dtype(dtype, "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_head_dim(head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      const int64_t work = sh.rows * (sh.P + tq) * D;  // rough pair count x D
      if (sh.rows <= kRowsSmall) {  // e.g. one query token: do not pad its g rows to 48
#pragma omp parallel for schedule(static) if (work >= kParallelMinElements)
        for (int64_t kvh = 0; kvh < hkv; ++kvh)
          forward_task<T, D, kRowsSmall>(static_cast<const T *>(q), static_cast<const T *>(k),
                                         static_cast<const T *>(v), static_cast<T *>(out), lse, sh,
                                         kvh, 0);
        return RELAT_OK;
      }
      const int64_t blocks = (sh.rows + kRows - 1) / kRows;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (work >= kParallelMinElements)
      for (int64_t kvh = 0; kvh < hkv; ++kvh)
        for (int64_t b = blocks - 1; b >= 0; --b)  // the longest (last) blocks first
          forward_task<T, D, kRows>(static_cast<const T *>(q), static_cast<const T *>(k),
                                    static_cast<const T *>(v), static_cast<T *>(out), lse, sh, kvh,
                                    b * kRows);
      return RELAT_OK;
    });
  });
}

extern "C" relat_status relat_cpu_attention_backward_workspace_bytes(int64_t tq, int64_t tk,
                                                                     int64_t hq, int64_t hkv,
                                                                     int64_t head_dim,
                                                                     relat_dtype dtype,
                                                                     int64_t *bytes) {
  if (auto m = relat::validate::attention_backward_workspace_bytes(tq, tk, hq, hkv, head_dim, dtype,
                                                                   bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  const int64_t chunks = tk > 0 ? backward_chunks(tk, hkv) : 1;
  *bytes = 4 * (tq * hq + partial_floats(chunks, tq, hq, head_dim, dtype));
  return RELAT_OK;
}

extern "C" relat_status relat_cpu_attention_backward(
    const void *dout, const void *q, const void *k, const void *v, const void *out,
    const float *lse, void *dq, void *dk, void *dv, float *workspace, int64_t workspace_bytes,
    int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t head_dim, int64_t kv_stride,
    float scale, int accumulate_dkv, relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::attention_backward(dout, q, k, v, out, lse, dq, dk, dv, workspace,
                                                   workspace_bytes, tq, tk, hq, hkv, head_dim,
                                                   kv_stride, scale, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tk == 0) return RELAT_OK;
  const Shape sh = make_shape(tq, tk, hq, hkv, kv_stride, scale);
  return dispatch_dtype(dtype, "attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_head_dim(head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      return backward_impl<T, D>(
          static_cast<const T *>(dout), static_cast<const T *>(q), static_cast<const T *>(k),
          static_cast<const T *>(v), static_cast<const T *>(out), lse, static_cast<T *>(dq),
          static_cast<T *>(dk), static_cast<T *>(dv), workspace, workspace_bytes / 4, sh, scale,
          accumulate_dkv != 0, dtype);
    });
  });
}
