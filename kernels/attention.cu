// Training attention on CUDA (causal with a shared prefix, grouped-query heads), forward and
// backward. CPU twin: native/src/attention.cpp; semantics in relat.h.
//
// Rows are packed per KV head: packed row R = t * g + j is token t of query head kvh * g + j, so
// one block serves all g query heads of a KV head and every K/V tile it stages in shared memory is
// reused g times (with Tq = 1 the block still has g rows of work). Row R sees keys 0 .. P + t.
//
// Forward (flash-attention 2 style, fp32 SIMT): block = 4 warps = 32 packed rows x one KV head.
// Q (pre-scaled by scale*log2 e) stays in shared memory; K and V tiles of 32 keys are staged as
// fp32. Per tile a warp computes its 8 x 32 scores with each lane owning 2 rows x 4 keys (float4
// shared loads, conflict-free thanks to the D+4 padding), does the online softmax in base 2 with
// the row max reduced over 8 lanes, writes P to a per-warp shared tile and accumulates O += P V
// with each lane owning 2 rows x D/8 dims in registers. Tiles past the block's last visible key
// are never visited; one exp2 per (row, key). Writes out and lse (natural log).
// Backward: (1) prep kernel, one warp per (query, head): delta = rowsum(dout * out) in fp32 and
// zeroes the fp32 dq accumulator. (2) main kernel, block = 32 keys x one KV head, walking every
// packed-row tile that sees its keys: recomputes S and dP = dout V^T, P = exp2(S*scale*log2 e -
// lse*log2 e), dS = P (dP - delta); dK and dV (32 keys x D) stay in registers for the whole walk,
// so no atomics and no second pass for them, and the prefix keys get their full gradient; dQ tile
// contributions dS K go to the fp32 accumulator with atomicAdd (order-dependent rounding in dq
// only; a separate dq pass would cost ~40% more FLOPs). (3) dq = T(acc) unless dq itself is fp32.
// Floors (F = tq*hq*D, K = tk*hkv*D elements of sizeof(T) = s; V = visible (query, key) pairs
// summed over query heads = hq*(tq*P + tq*(tq+1)/2)):
//   forward:  bytes >= (2F + 2K) s + 4 tq hq;  FLOPs = 4 V D (QK^T and PV) + V exp2.
//   backward: bytes >= (4F + 4K) s + 8 tq hq (+ 8F for the fp32 dq accumulator);
//             FLOPs = 10 V D (S and dP recomputed, dV, dK, dQ) + V exp2.
// These kernels run on the fp32 pipes (no tensor cores): at Qwen3-0.6B sizes (hq 16, hkv 8,
// D 128, tq 256, P 200) the forward is ~0.7 GFLOP, i.e. compute-, not memory-bound.
#include <type_traits>

#include "attention_common.cuh"
#include "validate.h"

namespace relat::cuda {
namespace {

using namespace attn;

constexpr int kThreads = 128;
constexpr int kWarps = 4;
// Blocks per SM the register budget is sized for (ptxas's default target for a bare
// __launch_bounds__(128) spills; these leave ~128 registers to the forward, ~255 to the backward,
// whose shared memory allows 2-4 resident blocks anyway).
constexpr int kForwardMinBlocks = 4;
constexpr int kBackwardMinBlocks = 2;
constexpr int kBM = 32;        // packed query rows per tile (8 per warp)
constexpr int kBN = 32;        // keys per tile
constexpr int kPS = kBM + 4;   // padded row stride of the P / dS tiles (kBM == kBN)
static_assert(kBM == kBN, "P tiles are square");

template <int D> constexpr int forward_smem_bytes() {
  return int(sizeof(float)) * ((kBM + 2 * kBN) * (D + 4) + kWarps * 8 * kPS);
}
template <int D> constexpr int backward_smem_bytes() {
  return int(sizeof(float)) * (2 * (kBM + kBN) * (D + 4) + 2 * kBN * kPS + 2 * kBM);
}

template <class T, int D>
__global__ void __launch_bounds__(kThreads, kForwardMinBlocks)
attention_forward_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
                         T *__restrict__ out, float *__restrict__ lse, int tq, int tk, int hq,
                         int g, int64_t kv_stride, float c) {
  constexpr int DP = D + 4;
  constexpr int E = D / 32;  // float4 groups of dims per lane: dims lo*4 + 32*e
  extern __shared__ float4 smem4[];
  float *Qs = reinterpret_cast<float *>(smem4);
  float *Ks = Qs + kBM * DP;
  float *Vs = Ks + kBN * DP;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, hi = lane >> 3, lo = lane & 7;
  float *Ps = Vs + kBN * DP + warp * 8 * kPS;

  const int kvh = blockIdx.y, R0 = blockIdx.x * kBM, rows_total = tq * g, P = tk - tq;
  load_tile<T, D, kBM>(Qs, DP, [&](int r) -> const T * {
    const int R = R0 + r;
    if (R >= rows_total) return nullptr;
    return q + (int64_t(R / g) * hq + kvh * g + R % g) * D;
  }, c);

  int lim[2];
  bool valid[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int R = R0 + warp * 8 + hi * 2 + i;
    valid[i] = R < rows_total;
    lim[i] = valid[i] ? P + R / g + 1 : 0;
  }
  const int last_row = min(R0 + kBM, rows_total) - 1;
  const int kend = min(tk, P + last_row / g + 1);
  const T *kb = k + int64_t(kvh) * D, *vb = v + int64_t(kvh) * D;

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float acc[2][E][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int e = 0; e < E; ++e)
#pragma unroll
      for (int u = 0; u < 4; ++u) acc[i][e][u] = 0.f;

  for (int k0 = 0; k0 < kend; k0 += kBN) {
    __syncthreads();  // the previous tile is consumed (and, the first time, nothing to wait for)
    load_tile<T, D, kBN>(Ks, DP, [&](int j) -> const T * {
      return k0 + j < kend ? kb + int64_t(k0 + j) * kv_stride : nullptr;
    }, 1.f);
    load_tile<T, D, kBN>(Vs, DP, [&](int j) -> const T * {
      return k0 + j < kend ? vb + int64_t(k0 + j) * kv_stride : nullptr;
    }, 1.f);
    __syncthreads();

    // Scores: rows warp*8 + hi*2 + i, keys lo + 8*j.
    float s[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
    const float *q0 = Qs + (warp * 8 + hi * 2) * DP, *q1 = q0 + DP;
#pragma unroll 4
    for (int d = 0; d < D; d += 4) {
      const float4 a0 = lds4(q0 + d), a1 = lds4(q1 + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float4 b = lds4(Ks + (lo + 8 * j) * DP + d);
        s[0][j] = dot4(a0, b, s[0][j]);
        s[1][j] = dot4(a1, b, s[1][j]);
      }
    }
    // Online softmax (base 2); each lane keeps a partial row sum over its keys.
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = k0 + lo + 8 * j;
        s[i][j] = key < lim[i] ? s[i][j] : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      mx = warp_max_lanes8(mx);
      const float m_new = fmaxf(m[i], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // rows that see nothing yet
      const float alpha = exp2f(m[i] - m_use);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = exp2f(s[i][j] - m_use);
        sum += p;
        Ps[(hi * 2 + i) * kPS + lo + 8 * j] = p;
      }
      l[i] = l[i] * alpha + sum;
      m[i] = m_new;
#pragma unroll
      for (int e = 0; e < E; ++e)
#pragma unroll
        for (int u = 0; u < 4; ++u) acc[i][e][u] *= alpha;
    }
    __syncwarp();
    // O += P V: rows hi*2 + i, dims lo*4 + 32*e.
    const int nk = min(kBN, kend - k0);
    for (int j = 0; j < nk; j += 4) {
      const float4 p0 = lds4(Ps + (hi * 2) * kPS + j), p1 = lds4(Ps + (hi * 2 + 1) * kPS + j);
      const float pa[4] = {p0.x, p0.y, p0.z, p0.w}, pb[4] = {p1.x, p1.y, p1.z, p1.w};
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float *vr = Vs + (j + jj) * DP + lo * 4;
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const float4 x = lds4(vr + 32 * e);
          axpy4(pa[jj], x, acc[0][e]);
          axpy4(pb[jj], x, acc[1][e]);
        }
      }
    }
    __syncwarp();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float lt = warp_sum_lanes8(l[i]);
    if (!valid[i]) continue;
    const int R = R0 + warp * 8 + hi * 2 + i, t = R / g, h = kvh * g + R % g;
    const float inv = 1.f / lt;
    T *orow = out + (int64_t(t) * hq + h) * D + lo * 4;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const float o[4] = {acc[i][e][0] * inv, acc[i][e][1] * inv, acc[i][e][2] * inv,
                          acc[i][e][3] * inv};
      store_vec<T, 4>(orow + 32 * e, o);
    }
    if (lo == 0) lse[int64_t(t) * hq + h] = (m[i] + log2f(lt)) * kLn2;
  }
}

// One warp per (query, head) row: delta = sum(dout * out); zeroes the row of the dq accumulator.
template <class T, int D>
__global__ void __launch_bounds__(kThreads)
attention_backward_prep_kernel(const T *__restrict__ dout, const T *__restrict__ out,
                               float *__restrict__ delta, float *__restrict__ dq_acc,
                               int64_t rows) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  constexpr int N = D / 32;
  float a[N], b[N];
  load_vec<T, N>(dout + row * D + lane * N, a);
  load_vec<T, N>(out + row * D + lane * N, b);
  float sum = 0.f;
#pragma unroll
  for (int u = 0; u < N; ++u) sum = fmaf(a[u], b[u], sum);
  sum = warp_sum(sum);
  if (lane == 0) delta[row] = sum;
#pragma unroll
  for (int u = 0; u < N; ++u) dq_acc[row * D + lane * N + u] = 0.f;
}

template <class T, int D>
__global__ void __launch_bounds__(kThreads, kBackwardMinBlocks)
attention_backward_kernel(const T *__restrict__ dout, const T *__restrict__ q,
                          const T *__restrict__ k, const T *__restrict__ v,
                          const float *__restrict__ lse, const float *__restrict__ delta,
                          float *__restrict__ dq_acc, T *__restrict__ dk, T *__restrict__ dv,
                          int tq, int tk, int hq, int hkv, int g, int64_t kv_stride, float c,
                          float scale, int accumulate) {
  constexpr int DP = D + 4;
  constexpr int E = D / 32;
  extern __shared__ float4 smem4[];
  float *Ks = reinterpret_cast<float *>(smem4);
  float *Vs = Ks + kBN * DP;
  float *Qs = Vs + kBN * DP;
  float *Os = Qs + kBM * DP;    // dout rows
  float *Pt = Os + kBM * DP;    // P^T  [keys][rows]
  float *Dt = Pt + kBN * kPS;   // dS^T [keys][rows]
  float *lse_s = Dt + kBN * kPS;
  float *delta_s = lse_s + kBM;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, hi = lane >> 3, lo = lane & 7;
  const int kvh = blockIdx.y, k0 = blockIdx.x * kBN, rows_total = tq * g, P = tk - tq;
  const T *kb = k + int64_t(kvh) * D, *vb = v + int64_t(kvh) * D;
  load_tile<T, D, kBN>(Ks, DP, [&](int j) -> const T * {
    return k0 + j < tk ? kb + int64_t(k0 + j) * kv_stride : nullptr;
  }, 1.f);
  load_tile<T, D, kBN>(Vs, DP, [&](int j) -> const T * {
    return k0 + j < tk ? vb + int64_t(k0 + j) * kv_stride : nullptr;
  }, 1.f);

  // This lane's keys in phases 1 and 2: kl = warp*8 + hi*2 + i.
  const int kl0 = warp * 8 + hi * 2;
  float dk_acc[2][E][4], dv_acc[2][E][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int e = 0; e < E; ++e)
#pragma unroll
      for (int u = 0; u < 4; ++u) dk_acc[i][e][u] = dv_acc[i][e][u] = 0.f;

  const int t_first = max(0, k0 - P);
  for (int R0 = t_first * g; R0 < rows_total; R0 += kBM) {
    __syncthreads();  // K/V loaded (first time); the previous row tile is consumed
    auto row_ptr = [&](const T *base, int r) -> const T * {
      const int R = R0 + r;
      if (R >= rows_total) return nullptr;
      return base + (int64_t(R / g) * hq + kvh * g + R % g) * D;
    };
    load_tile<T, D, kBM>(Qs, DP, [&](int r) { return row_ptr(q, r); }, 1.f);
    load_tile<T, D, kBM>(Os, DP, [&](int r) { return row_ptr(dout, r); }, 1.f);
    if (threadIdx.x < kBM) {
      const int R = R0 + threadIdx.x;
      if (R < rows_total) {
        const int64_t row = int64_t(R / g) * hq + kvh * g + R % g;
        lse_s[threadIdx.x] = lse[row] * kLog2e;
        delta_s[threadIdx.x] = delta[row];
      } else {
        lse_s[threadIdx.x] = INFINITY;  // P = 0 for padding rows
        delta_s[threadIdx.x] = 0.f;
      }
    }
    __syncthreads();

    // Phase 1: S^T and dP^T for keys kl0 + i, rows lo + 8*j.
    float s[2][4], dp[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = dp[i][j] = 0.f;
    {
      const float *ka = Ks + kl0 * DP, *kbp = ka + DP, *va = Vs + kl0 * DP, *vbp = va + DP;
#pragma unroll 2
      for (int d = 0; d < D; d += 4) {
        const float4 k_0 = lds4(ka + d), k_1 = lds4(kbp + d), v_0 = lds4(va + d), v_1 = lds4(vbp + d);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float4 qq = lds4(Qs + (lo + 8 * j) * DP + d);
          const float4 oo = lds4(Os + (lo + 8 * j) * DP + d);
          s[0][j] = dot4(k_0, qq, s[0][j]);
          s[1][j] = dot4(k_1, qq, s[1][j]);
          dp[0][j] = dot4(v_0, oo, dp[0][j]);
          dp[1][j] = dot4(v_1, oo, dp[1][j]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int key = k0 + kl0 + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = lo + 8 * j, R = R0 + r;
        const bool ok = key < tk && R < rows_total && key <= P + R / g;
        const float p = ok ? exp2f(fmaf(s[i][j], c, -lse_s[r])) : 0.f;
        const float ds = p * (dp[i][j] - delta_s[r]);
        Pt[(kl0 + i) * kPS + r] = p;
        Dt[(kl0 + i) * kPS + r] = ds;
      }
    }
    __syncthreads();

    // Phase 2: dV += P^T dO, dK += dS^T Q for keys kl0 + i, dims lo*4 + 32*e.
#pragma unroll 2
    for (int r = 0; r < kBM; r += 4) {
      const float4 p0 = lds4(Pt + kl0 * kPS + r), p1 = lds4(Pt + (kl0 + 1) * kPS + r);
      const float4 d0 = lds4(Dt + kl0 * kPS + r), d1 = lds4(Dt + (kl0 + 1) * kPS + r);
      const float pa[4] = {p0.x, p0.y, p0.z, p0.w}, pb[4] = {p1.x, p1.y, p1.z, p1.w};
      const float da[4] = {d0.x, d0.y, d0.z, d0.w}, db[4] = {d1.x, d1.y, d1.z, d1.w};
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) {
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const float4 oo = lds4(Os + (r + rr) * DP + lo * 4 + 32 * e);
          const float4 qq = lds4(Qs + (r + rr) * DP + lo * 4 + 32 * e);
          axpy4(pa[rr], oo, dv_acc[0][e]);
          axpy4(pb[rr], oo, dv_acc[1][e]);
          axpy4(da[rr], qq, dk_acc[0][e]);
          axpy4(db[rr], qq, dk_acc[1][e]);
        }
      }
    }

    // Phase 3: dQ rows (warp*8 + hi*2 + i) += scale * sum over the 32 keys of dS * K.
    {
      float dq[2][E][4];
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int e = 0; e < E; ++e)
#pragma unroll
          for (int u = 0; u < 4; ++u) dq[i][e][u] = 0.f;
      const int r0 = warp * 8 + hi * 2;
      const int nk = min(kBN, tk - k0);
#pragma unroll 2
      for (int j = 0; j < nk; ++j) {
        const float ds0 = Dt[j * kPS + r0], ds1 = Dt[j * kPS + r0 + 1];
#pragma unroll
        for (int e = 0; e < E; ++e) {
          const float4 kk = lds4(Ks + j * DP + lo * 4 + 32 * e);
          axpy4(ds0, kk, dq[0][e]);
          axpy4(ds1, kk, dq[1][e]);
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int R = R0 + r0 + i;
        if (R >= rows_total) continue;
        float *dst = dq_acc + (int64_t(R / g) * hq + kvh * g + R % g) * D + lo * 4;
#pragma unroll
        for (int e = 0; e < E; ++e)
#pragma unroll
          for (int u = 0; u < 4; ++u) atomicAdd(dst + 32 * e + u, dq[i][e][u] * scale);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int key = k0 + kl0 + i;
    if (key >= tk) continue;
    T *dkr = dk + (int64_t(key) * hkv + kvh) * D + lo * 4;
    T *dvr = dv + (int64_t(key) * hkv + kvh) * D + lo * 4;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      float gk[4], gv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        gk[u] = dk_acc[i][e][u] * scale;
        gv[u] = dv_acc[i][e][u];
      }
      if (accumulate) {
        float ok[4], ov[4];
        load_vec<T, 4>(dkr + 32 * e, ok);
        load_vec<T, 4>(dvr + 32 * e, ov);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          gk[u] += ok[u];
          gv[u] += ov[u];
        }
      }
      store_vec<T, 4>(dkr + 32 * e, gk);
      store_vec<T, 4>(dvr + 32 * e, gv);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(256)
convert_kernel(const float *__restrict__ src, T *__restrict__ dst, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<T>(src[i]);
}

template <class T>
__global__ void __launch_bounds__(256) zero_kernel(T *__restrict__ dst, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<T>(0.f);
}

unsigned elementwise_blocks(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return unsigned(b < 1 ? 1 : (b > 4096 ? 4096 : b));
}

template <class Fn> relat_status dispatch_head_dim(int64_t head_dim, Fn &&fn) {
  if (head_dim == 64) return fn(std::integral_constant<int, 64>{});
  return fn(std::integral_constant<int, 128>{});
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_attention_forward(const void *q, const void *k, const void *v,
                                                     void *out, float *lse, int64_t tq, int64_t tk,
                                                     int64_t hq, int64_t hkv, int64_t head_dim,
                                                     int64_t kv_stride, float scale,
                                                     relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("attention_forward", stream);
  if (auto m = relat::validate::attention_forward(q, k, v, out, lse, tq, tk, hq, hkv, head_dim,
                                                  kv_stride, scale, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tq == 0) return RELAT_OK;
  const int g = int(hq / hkv);
  const int64_t rows = tq * g;
  const dim3 grid(unsigned((rows + kBM - 1) / kBM), unsigned(hkv));
  return dispatch_dtype(dtype, "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_head_dim(head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      constexpr int smem = forward_smem_bytes<D>();
      if (auto s = allow_dynamic_shared(attention_forward_kernel<T, D>, smem, "attention_forward");
          s != RELAT_OK)
        return s;
      RELAT_LAUNCH(grid, kThreads, smem, stream, attention_forward_kernel<T, D>)(
          static_cast<const T *>(q), static_cast<const T *>(k), static_cast<const T *>(v),
          static_cast<T *>(out), lse, int(tq), int(tk), int(hq), g, kv_stride,
          scale * relat::cuda::attn::kLog2e);
      return check_launch("attention_forward");
    });
  });
}

extern "C" relat_status relat_cuda_attention_backward_workspace_bytes(int64_t tq, int64_t tk,
                                                                      int64_t hq, int64_t hkv,
                                                                      int64_t head_dim,
                                                                      relat_dtype dtype,
                                                                      int64_t *bytes) {
  if (auto m = relat::validate::attention_backward_workspace_bytes(tq, tk, hq, hkv, head_dim, dtype,
                                                                   bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = relat::plan::attention_backward_min_workspace_bytes(tq, hq, head_dim, dtype);
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_attention_backward(
    const void *dout, const void *q, const void *k, const void *v, const void *out,
    const float *lse, void *dq, void *dk, void *dv, float *workspace, int64_t workspace_bytes,
    int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t head_dim, int64_t kv_stride,
    float scale, int accumulate_dkv, relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("attention_backward", stream);
  if (auto m = relat::validate::attention_backward(dout, q, k, v, out, lse, dq, dk, dv, workspace,
                                                   workspace_bytes, tq, tk, hq, hkv, head_dim,
                                                   kv_stride, scale, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tk == 0) return RELAT_OK;
  const int g = int(hq / hkv);
  const int64_t rows = tq * hq;  // (query, head) rows
  return dispatch_dtype(dtype, "attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_head_dim(head_dim, [&](auto dim) -> relat_status {
      constexpr int D = decltype(dim)::value;
      if (tq == 0) {  // no query: the gradients are zero (or unchanged when accumulating)
        if (accumulate_dkv) return RELAT_OK;
        const int64_t n = tk * hkv * D;
        RELAT_LAUNCH(elementwise_blocks(n), 256, 0, stream, zero_kernel<T>)(static_cast<T *>(dk), n);
        RELAT_LAUNCH(elementwise_blocks(n), 256, 0, stream, zero_kernel<T>)(static_cast<T *>(dv), n);
        return check_launch("attention_backward");
      }
      float *delta = workspace;
      float *dq_acc = dtype == RELAT_F32 ? static_cast<float *>(dq) : workspace + rows;
      RELAT_LAUNCH(unsigned((rows + kWarps - 1) / kWarps), kThreads, 0, stream,
                   attention_backward_prep_kernel<T, D>)(
          static_cast<const T *>(dout), static_cast<const T *>(out), delta, dq_acc, rows);
      if (auto s = check_launch("attention_backward"); s != RELAT_OK) return s;
      constexpr int smem = backward_smem_bytes<D>();
      if (auto s = allow_dynamic_shared(attention_backward_kernel<T, D>, smem, "attention_backward");
          s != RELAT_OK)
        return s;
      const dim3 grid(unsigned((tk + kBN - 1) / kBN), unsigned(hkv));
      RELAT_LAUNCH(grid, kThreads, smem, stream, attention_backward_kernel<T, D>)(
          static_cast<const T *>(dout), static_cast<const T *>(q), static_cast<const T *>(k),
          static_cast<const T *>(v), lse, delta, dq_acc, static_cast<T *>(dk),
          static_cast<T *>(dv), int(tq), int(tk), int(hq), int(hkv), g, kv_stride,
          scale * relat::cuda::attn::kLog2e, scale, accumulate_dkv);
      if (auto s = check_launch("attention_backward"); s != RELAT_OK) return s;
      if (dtype != RELAT_F32) {
        const int64_t n = rows * D;
        RELAT_LAUNCH(elementwise_blocks(n), 256, 0, stream, convert_kernel<T>)(
            dq_acc, static_cast<T *>(dq), n);
        return check_launch("attention_backward");
      }
      return RELAT_OK;
    });
  });
}
