// Latent step on CUDA: soft mode forward/backward and the row rescale of the realign and identity
// modes. CPU twin: native/src/latent_step.cpp (same math and outputs; see relat.h).
//
// Soft forward, fused: e = softmax(U h / tau)^T E in ONE pass over U and E. The vocabulary is split
// over up to kMaxBlocks blocks; each block sweeps its rows in tiles of 64: the 8 warps compute
// z = U_v . h / tau for the tile (one vocabulary row per warp at a time, 16-byte loads), then the
// block updates the running max/sum per batch row and rescales and accumulates acc += p E_v with
// every thread owning columns of acc (coalesced 16-byte reads of the E rows, acc in shared memory).
// The per-block partials (m, l, acc) are merged by soft_merge_kernel. Tied embeddings (E == U) read
// the same rows twice within a tile: the second read is an L1/L2 hit.
// Soft backward, fused, also one pass: per tile z = U_v . h / tau and g = E_v . de (one warp per
// row), p = exp(z - lse), then dh += p (g - s) U_v and ubar += p U_v (columns per thread, the U rows
// again from cache), with s = e32 . de from the forward, and per batch row G += p g, P += p (fp64).
// soft_sum_kernel sums the block partials and corrects to the self-consistent centre:
// dh = (sum p (g - s) U_v + (s - G / P) ubar) / (P tau). Without it, the fp32 mismatch between s and
// sum p g (and P - 1) times ubar reached 3e-2 of max |dh| on a flat softmax (see the CPU twin).
// Floors (batch B, hidden d, vocab V, storage S bytes): forward and backward each read U and E
// once, 2 V d S bytes (~V d S when tied), FLOPs 4 B V d (forward) and 8 B V d (backward): for the
// B <= 8 of the latent step both are bandwidth-bound (e.g. V = 151,936, d = 4096, bf16: 2.5 GB per
// direction, ~0.55 ms at 4.8 TB/s on H200); the backward's ubar adds 2 B V d FLOPs, not bytes.
// Batch rows are processed in groups of up to kMaxGroup (and group x d <= 10,240 fp32 accumulators,
// 40 KiB of shared memory; the backward has two accumulators per row, dh and ubar, so its group
// holds half the rows, at least one: up to 80 KiB for d up to 10,240); each group sweeps U and E
// again.
// Extra memory: blocks x B x (d + 2) fp32 partials (backward B x (2 d + 4)), <= 320 blocks, never
// O(B V).
//
// Row rescale: one block per row, a block reduction for ||x|| (and x . dy), then the scaled row.
// Bytes: read x (and dy) once, write y once; bandwidth-bound.
#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "cuda_common.cuh"
#include "validate.h"

namespace relat::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowThreads = 1024;  // the row rescale: row_block_size(cols), up to 32 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 64;
constexpr int kMaxGroup = 8;
constexpr int64_t kMaxSmemAcc = 10240;  // group x hidden fp32 accumulators (40 KiB of shared memory)
constexpr int kMaxBlocks = 320;
constexpr int64_t kAlign = 256;

constexpr int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

struct Plan {
  int group = 0;       // batch rows per block
  int groups = 0;      // ceil(batch / group)
  int blocks = 0;      // blocks along the vocabulary (for the workspace: the maximum)
  int64_t rows = 0;    // vocabulary rows per block (multiple of kTile)
  int64_t part = 0;    // floats per block partial: group x (hidden + 2), backward group x (2 hidden + 4)
  int64_t total = 0;   // workspace bytes
  size_t smem = 0;     // dynamic shared memory per block
};

// accumulators: fp32 [hidden] rows kept per batch row in shared memory (forward acc; backward dh
// and ubar).
Plan make_plan(int64_t batch, int64_t hidden, int64_t vocab, int blocks_wanted, int accumulators) {
  Plan p;
  p.group = int(std::min<int64_t>(
      {batch, kMaxGroup, std::max<int64_t>(1, kMaxSmemAcc / (accumulators * hidden))}));
  p.groups = int(ceil_div(batch, p.group));
  const int64_t tiles = ceil_div(vocab, kTile);
  const int64_t b = std::min<int64_t>({int64_t(blocks_wanted), kMaxBlocks, tiles});
  p.rows = ceil_div(tiles, b) * kTile;
  p.blocks = int(ceil_div(vocab, p.rows));
  p.part = int64_t(p.group) * accumulators * (hidden + 2);
  p.total = batch > 0 ? int64_t(p.groups) * kMaxBlocks * p.part * 4 + kAlign : 0;
  p.smem = size_t(p.group) * size_t(accumulators) * size_t(hidden) * sizeof(float);
  return p;
}

int blocks_for_device() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    sms = 132;
  }
  return 2 * sms;
}

// N consecutive elements as fp32; N = 16 bytes worth when Vec (16-byte aligned), else 1.
template <class T, bool Vec> struct Chunk {
  static constexpr int N = Vec ? int(16 / sizeof(T)) : 1;
  float v[N];
  __device__ __forceinline__ void load(const T *p) {
    if constexpr (Vec) {
      const uint4 raw = *reinterpret_cast<const uint4 *>(p);
      T t[N];
      memcpy(t, &raw, 16);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] = to_f32(t[i]);
    } else {
      v[0] = to_f32(*p);
    }
  }
};

// Dot products of the vocabulary row w with the group's rows of x (ld hidden), per warp; every
// lane returns the full sums in out[0..group).
template <class T, bool Vec>
__device__ __forceinline__ void warp_dots(const T *__restrict__ w, const T *__restrict__ x,
                                          int group, int64_t hidden, float out[kMaxGroup]) {
  using C = Chunk<T, Vec>;
  const int lane = int(threadIdx.x) & 31;
#pragma unroll
  for (int b = 0; b < kMaxGroup; ++b) out[b] = 0.f;
  for (int64_t k = int64_t(lane) * C::N; k < hidden; k += 32 * C::N) {
    C wc;
    wc.load(w + k);
#pragma unroll
    for (int b = 0; b < kMaxGroup; ++b) {
      if (b < group) {
        C xc;
        xc.load(x + b * hidden + k);
#pragma unroll
        for (int i = 0; i < C::N; ++i) out[b] = fmaf(wc.v[i], xc.v[i], out[b]);
      }
    }
  }
#pragma unroll
  for (int b = 0; b < kMaxGroup; ++b) out[b] = warp_sum(out[b]);
}

// acc_a[b][k] = scale[b] * acc_a[b][k] + sum_j coef_a[j][b] w[j][k] over the tile for each of the
// NA accumulators (one read of every w element serves them all), columns per thread.
template <class T, bool Vec, int NA>
__device__ __forceinline__ void accumulate_rows(const T *__restrict__ w, int nj,
                                                const float *const (&coef)[NA], const float *scale,
                                                int group, int64_t hidden, float *const (&acc)[NA]) {
  using C = Chunk<T, Vec>;
  for (int64_t k = int64_t(threadIdx.x) * C::N; k < hidden; k += int64_t(blockDim.x) * C::N) {
    float a[NA][kMaxGroup][C::N];
#pragma unroll
    for (int n = 0; n < NA; ++n)
#pragma unroll
      for (int b = 0; b < kMaxGroup; ++b)
#pragma unroll
        for (int i = 0; i < C::N; ++i)
          a[n][b][i] = b < group ? acc[n][b * hidden + k + i] * scale[b] : 0.f;
    for (int j = 0; j < nj; ++j) {
      C wc;
      wc.load(w + int64_t(j) * hidden + k);
#pragma unroll
      for (int n = 0; n < NA; ++n)
#pragma unroll
        for (int b = 0; b < kMaxGroup; ++b) {
          const float c = b < group ? coef[n][j * kMaxGroup + b] : 0.f;
#pragma unroll
          for (int i = 0; i < C::N; ++i) a[n][b][i] = fmaf(c, wc.v[i], a[n][b][i]);
        }
    }
#pragma unroll
    for (int n = 0; n < NA; ++n)
#pragma unroll
      for (int b = 0; b < kMaxGroup; ++b)
        if (b < group)
#pragma unroll
          for (int i = 0; i < C::N; ++i) acc[n][b * hidden + k + i] = a[n][b][i];
  }
}

// ---- soft forward -----------------------------------------------------------------------------

// Grid: (blocks along the vocabulary, batch groups). Partial layout per (group, block):
// m[group], l[group], acc[group][hidden].
template <class T, bool Vec>
__global__ void __launch_bounds__(kThreads, 1) soft_forward_kernel(
    const T *__restrict__ h, const T *__restrict__ u, const T *__restrict__ emb, int64_t batch,
    int64_t hidden, int64_t vocab, float inv_tau, int group, int64_t rows_per_block,
    int64_t part_floats, float *__restrict__ parts) {
  extern __shared__ float acc[];  // [group][hidden]
  __shared__ float z[kTile * kMaxGroup];
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup], alpha_s[kMaxGroup];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const int64_t b0 = int64_t(blockIdx.y) * group;
  const int gb = int(std::min<int64_t>(group, batch - b0));
  const T *hg = h + b0 * hidden;
  const int64_t vb = int64_t(blockIdx.x) * rows_per_block;
  const int64_t ve = std::min(vocab, vb + rows_per_block);
  for (int64_t k = threadIdx.x; k < int64_t(gb) * hidden; k += blockDim.x) acc[k] = 0.f;
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.f;
  }
  __syncthreads();
  for (int64_t v0 = vb; v0 < ve; v0 += kTile) {
    const int nj = int(std::min<int64_t>(kTile, ve - v0));
    for (int j = warp; j < nj; j += kWarps) {
      float d[kMaxGroup];
      warp_dots<T, Vec>(u + (v0 + j) * hidden, hg, gb, hidden, d);
      if (lane == 0)
#pragma unroll
        for (int b = 0; b < kMaxGroup; ++b) z[j * kMaxGroup + b] = d[b] * inv_tau;
    }
    __syncthreads();
    if (int(threadIdx.x) < gb) {  // online softmax update, one thread per batch row
      const int b = int(threadIdx.x);
      float mx = m_s[b];
      for (int j = 0; j < nj; ++j) mx = fmaxf(mx, z[j * kMaxGroup + b]);
      const float alpha = expf(m_s[b] - mx);  // 0 on the first tile (m = -inf)
      float sum = 0.f;
      for (int j = 0; j < nj; ++j) {
        const float p = expf(z[j * kMaxGroup + b] - mx);
        z[j * kMaxGroup + b] = p;
        sum += p;
      }
      l_s[b] = alpha * l_s[b] + sum;
      m_s[b] = mx;
      alpha_s[b] = alpha;
    }
    __syncthreads();
    accumulate_rows<T, Vec, 1>(emb + v0 * hidden, nj, {z}, alpha_s, gb, hidden, {acc});
    __syncthreads();
  }
  float *part = parts + (int64_t(blockIdx.y) * gridDim.x + blockIdx.x) * part_floats;
  if (int(threadIdx.x) < gb) {
    part[threadIdx.x] = m_s[threadIdx.x];
    part[group + threadIdx.x] = l_s[threadIdx.x];
  }
  for (int64_t k = threadIdx.x; k < int64_t(gb) * hidden; k += blockDim.x)
    part[2 * group + k] = acc[k];
}

// e[b][k] = sum over blocks of acc * exp(m - M) / L. Grid: (column blocks, batch rows).
template <class T>
__global__ void __launch_bounds__(kThreads) soft_merge_kernel(const float *__restrict__ parts,
                                                              int blocks, int group,
                                                              int64_t part_floats, int64_t hidden,
                                                              T *__restrict__ e,
                                                              float *__restrict__ lse,
                                                              float *__restrict__ e32) {
  const int64_t b = blockIdx.y;
  const int64_t gi = b / group, bi = b % group;
  const float *gp = parts + gi * int64_t(blocks) * part_floats;
  float mx = -INFINITY;
  for (int c = 0; c < blocks; ++c) mx = fmaxf(mx, gp[c * part_floats + bi]);
  float total = 0.f;
  for (int c = 0; c < blocks; ++c)
    total += gp[c * part_floats + group + bi] * expf(gp[c * part_floats + bi] - mx);
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (lse && blockIdx.x == 0 && threadIdx.x == 0) lse[b] = mx + logf(total);
  if (k >= hidden) return;
  float v = 0.f;
  for (int c = 0; c < blocks; ++c) {
    const float *p = gp + c * part_floats;
    v += p[2 * group + bi * hidden + k] * expf(p[bi] - mx);
  }
  v /= total;
  e[b * hidden + k] = from_f32<T>(v);
  if (e32) e32[b * hidden + k] = v;
}

// ---- soft backward ----------------------------------------------------------------------------

// Partial layout per (group, block): dh[group][hidden], ubar[group][hidden], G[group], P[group]
// (G and P as fp64, two floats each).
template <class T, bool Vec>
__global__ void __launch_bounds__(kThreads, 1) soft_backward_kernel(
    const T *__restrict__ h, const T *__restrict__ u, const T *__restrict__ emb,
    const float *__restrict__ lse, const float *__restrict__ e32, const T *__restrict__ de,
    int64_t batch, int64_t hidden, int64_t vocab, float inv_tau, int group,
    int64_t rows_per_block, int64_t part_floats, float *__restrict__ parts) {
  extern __shared__ float acc[];  // dh [group][hidden], then ubar [group][hidden]
  __shared__ float z[kTile * kMaxGroup], g[kTile * kMaxGroup];
  __shared__ float s_s[kMaxGroup], lse_s[kMaxGroup], one_s[kMaxGroup], scratch[32];
  __shared__ double G_s[kMaxGroup], P_s[kMaxGroup];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const int64_t b0 = int64_t(blockIdx.y) * group;
  const int gb = int(std::min<int64_t>(group, batch - b0));
  const T *hg = h + b0 * hidden;
  const T *deg = de + b0 * hidden;
  const int64_t vb = int64_t(blockIdx.x) * rows_per_block;
  const int64_t ve = std::min(vocab, vb + rows_per_block);
  float *dh = acc, *ubar = acc + int64_t(group) * hidden;
  // s[b] = e32[b] . de[b] (the forward's fp32 output): the centre the sweep subtracts.
  for (int b = 0; b < gb; ++b) {
    float v = 0.f;
    for (int64_t k = threadIdx.x; k < hidden; k += blockDim.x)
      v = fmaf(e32[(b0 + b) * hidden + k], to_f32(deg[b * hidden + k]), v);
    v = block_sum(v, scratch);
    if (threadIdx.x == 0) s_s[b] = v;
  }
  for (int64_t k = threadIdx.x; k < int64_t(gb) * hidden; k += blockDim.x) dh[k] = ubar[k] = 0.f;
  if (threadIdx.x < kMaxGroup) {
    lse_s[threadIdx.x] = int(threadIdx.x) < gb ? lse[b0 + threadIdx.x] : 0.f;
    one_s[threadIdx.x] = 1.f;
    G_s[threadIdx.x] = P_s[threadIdx.x] = 0.0;
  }
  __syncthreads();
  for (int64_t v0 = vb; v0 < ve; v0 += kTile) {
    const int nj = int(std::min<int64_t>(kTile, ve - v0));
    for (int j = warp; j < nj; j += kWarps) {
      float dz[kMaxGroup], dg[kMaxGroup];
      warp_dots<T, Vec>(u + (v0 + j) * hidden, hg, gb, hidden, dz);
      warp_dots<T, Vec>(emb + (v0 + j) * hidden, deg, gb, hidden, dg);
      if (lane == 0)
#pragma unroll
        for (int b = 0; b < kMaxGroup; ++b) {
          z[j * kMaxGroup + b] = dz[b] * inv_tau;
          g[j * kMaxGroup + b] = dg[b];
        }
    }
    __syncthreads();
    if (int(threadIdx.x) < gb) {  // one thread per batch row: p, the sweep's coefficients, G and P
      const int b = int(threadIdx.x);
      float gsum = 0.f, psum = 0.f;  // per tile in fp32, across tiles in fp64
      for (int j = 0; j < nj; ++j) {
        const int q = j * kMaxGroup + b;
        const float p = expf(z[q] - lse_s[b]);
        gsum = fmaf(p, g[q], gsum);
        psum += p;
        z[q] = p * (g[q] - s_s[b]);
        g[q] = p;
      }
      G_s[b] += gsum;
      P_s[b] += psum;
    }
    __syncthreads();
    accumulate_rows<T, Vec, 2>(u + v0 * hidden, nj, {z, g}, one_s, gb, hidden, {dh, ubar});
    __syncthreads();
  }
  float *part = parts + (int64_t(blockIdx.y) * gridDim.x + blockIdx.x) * part_floats;
  for (int64_t k = threadIdx.x; k < int64_t(gb) * hidden; k += blockDim.x) {
    part[k] = dh[k];
    part[int64_t(group) * hidden + k] = ubar[k];
  }
  if (int(threadIdx.x) < gb) {
    double *sums = reinterpret_cast<double *>(part + 2 * int64_t(group) * hidden);
    sums[threadIdx.x] = G_s[threadIdx.x];
    sums[group + threadIdx.x] = P_s[threadIdx.x];
  }
}

// 1 / x in fp64 from the fp32 reciprocal and two Newton steps: a plain fp64 division calls a slow
// path that needs a stack frame.
__device__ __forceinline__ double reciprocal(double x) {
  double r = double(__frcp_rn(float(x)));
  r = fma(r, fma(-x, r, 1.0), r);
  return fma(r, fma(-x, r, 1.0), r);
}

// dh[b][k] = (sum dh + (s - G / P) sum ubar) / (P tau) over the blocks. Grid: (column blocks, batch
// rows). s is recomputed from e32 . de exactly as the sweep did (same block_sum order).
template <class T>
__global__ void __launch_bounds__(kThreads) soft_sum_kernel(const float *__restrict__ parts,
                                                            int blocks, int group,
                                                            int64_t part_floats, int64_t hidden,
                                                            float inv_tau,
                                                            const float *__restrict__ e32,
                                                            const T *__restrict__ de,
                                                            T *__restrict__ dh) {
  __shared__ float scratch[32];
  const int64_t b = blockIdx.y;
  const int gi = int(blockIdx.y) / group, bi = int(blockIdx.y) % group;
  const float *gp = parts + gi * int64_t(blocks) * part_floats;
  float sv = 0.f;
  for (int64_t k = threadIdx.x; k < hidden; k += blockDim.x)
    sv = fmaf(e32[b * hidden + k], to_f32(de[b * hidden + k]), sv);
  sv = block_sum(sv, scratch);
  double G = 0.0, P = 0.0;
  for (int c = 0; c < blocks; ++c) {
    const double *sums = reinterpret_cast<const double *>(gp + c * part_floats + 2 * int64_t(group) * hidden);
    G += sums[bi];
    P += sums[group + bi];
  }
  const double inv_p = reciprocal(P);
  const float shift = float(double(sv) - G * inv_p), scale = float(double(inv_tau) * inv_p);
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= hidden) return;
  float d = 0.f, ub = 0.f;
  for (int c = 0; c < blocks; ++c) {
    const float *p = gp + c * part_floats + bi * hidden + k;
    d += p[0];
    ub += p[int64_t(group) * hidden];
  }
  dh[b * hidden + k] = from_f32<T>((d + shift * ub) * scale);
}

bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

char *aligned(void *p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<char *>((a + kAlign - 1) / kAlign * kAlign);
}

template <class T>
bool vector_ok(int64_t hidden, std::initializer_list<const void *> ptrs) {
  if (hidden % int64_t(16 / sizeof(T)) != 0) return false;
  for (const void *p : ptrs)
    if (!aligned16(p)) return false;
  return true;
}

// ---- row rescale ------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kRowThreads)
    rescale_forward_kernel(const T *x, T *y, int64_t cols, float target, float min_norm) {
  __shared__ float scratch[32];
  const T *xr = x + int64_t(blockIdx.x) * cols;
  T *yr = y + int64_t(blockIdx.x) * cols;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = to_f32(xr[c]);
    ss = fmaf(v, v, ss);
  }
  ss = block_sum(ss, scratch);  // ends with a barrier: y may alias x
  const float scale = target / fmaxf(sqrtf(ss), min_norm);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = from_f32<T>(to_f32(xr[c]) * scale);
}

template <class T>
__global__ void __launch_bounds__(kRowThreads)
    rescale_backward_kernel(const T *x, const T *dy, T *dx, int64_t cols, float target,
                            float min_norm) {
  __shared__ float scratch[32];
  const int64_t off = int64_t(blockIdx.x) * cols;
  float ss = 0.f, xd = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xv = to_f32(x[off + c]);
    ss = fmaf(xv, xv, ss);
    xd = fmaf(xv, to_f32(dy[off + c]), xd);
  }
  ss = block_sum(ss, scratch);
  xd = block_sum(xd, scratch);  // ends with a barrier: dx may alias dy
  const float n = sqrtf(ss);
  float a, b;
  if (n >= min_norm) {
    a = target / n;
    b = a * xd / (n * n);
  } else {
    a = target / min_norm;
    b = 0.f;
  }
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dx[off + c] = from_f32<T>(a * to_f32(dy[off + c]) - b * to_f32(x[off + c]));
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_latent_soft_workspace_bytes(int64_t batch, int64_t hidden,
                                                               int64_t vocab, relat_dtype dtype,
                                                               int64_t *forward_bytes,
                                                               int64_t *backward_bytes) {
  if (auto m = relat::validate::latent_soft_workspace_bytes(batch, hidden, vocab, dtype,
                                                            forward_bytes, backward_bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *forward_bytes = make_plan(batch, hidden, vocab, kMaxBlocks, 1).total;
  *backward_bytes = make_plan(batch, hidden, vocab, kMaxBlocks, 2).total;
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_latent_soft_forward(const void *h, const void *u, const void *emb,
                                                       void *e, float *lse, float *e32,
                                                       int64_t batch, int64_t hidden,
                                                       int64_t vocab, float inv_tau,
                                                       void *workspace, int64_t workspace_bytes,
                                                       relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("latent_soft_forward", stream);
  const char *op = "latent_soft_forward";
  if (auto m = relat::validate::latent_soft_forward(h, u, emb, e, batch, hidden, vocab, inv_tau,
                                                    dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes,
                                          make_plan(batch, hidden, vocab, kMaxBlocks, 1).total);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (hidden > kMaxSmemAcc)
    return fail(RELAT_ERR_UNSUPPORTED, "%s: hidden %lld exceeds %lld", op, (long long)hidden,
                (long long)kMaxSmemAcc);
  if (batch == 0) return RELAT_OK;
  const Plan p = make_plan(batch, hidden, vocab, blocks_for_device(), 1);
  float *parts = reinterpret_cast<float *>(aligned(workspace));
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *hs = static_cast<const T *>(h), *us = static_cast<const T *>(u),
            *es = static_cast<const T *>(emb);
    const dim3 grid(unsigned(p.blocks), unsigned(p.groups));
    auto kernel = vector_ok<T>(hidden, {h, u, emb}) ? soft_forward_kernel<T, true>
                                                    : soft_forward_kernel<T, false>;
    if (relat_status st = allow_dynamic_shared(kernel, p.smem, op); st != RELAT_OK) return st;
    RELAT_LAUNCH(grid, kThreads, p.smem, stream, kernel)(hs, us, es, batch, hidden, vocab, inv_tau,
                                                         p.group, p.rows, p.part, parts);
    const dim3 mgrid(unsigned(ceil_div(hidden, kThreads)), unsigned(batch));
    RELAT_LAUNCH(mgrid, kThreads, 0, stream, soft_merge_kernel<T>)(
        parts, p.blocks, p.group, p.part, hidden, static_cast<T *>(e), lse, e32);
    return check_launch(op);
  });
}

extern "C" relat_status relat_cuda_latent_soft_backward(const void *h, const void *u,
                                                        const void *emb, const float *lse,
                                                        const float *e32, const void *de, void *dh,
                                                        int64_t batch, int64_t hidden,
                                                        int64_t vocab, float inv_tau,
                                                        void *workspace, int64_t workspace_bytes,
                                                        relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("latent_soft_backward", stream);
  const char *op = "latent_soft_backward";
  if (auto m = relat::validate::latent_soft_backward(h, u, emb, lse, e32, de, dh, batch, hidden,
                                                     vocab, inv_tau, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes,
                                          make_plan(batch, hidden, vocab, kMaxBlocks, 2).total);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (hidden > kMaxSmemAcc)
    return fail(RELAT_ERR_UNSUPPORTED, "%s: hidden %lld exceeds %lld", op, (long long)hidden,
                (long long)kMaxSmemAcc);
  if (batch == 0) return RELAT_OK;
  const Plan p = make_plan(batch, hidden, vocab, blocks_for_device(), 2);
  float *parts = reinterpret_cast<float *>(aligned(workspace));
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *hs = static_cast<const T *>(h), *us = static_cast<const T *>(u),
            *es = static_cast<const T *>(emb), *ds = static_cast<const T *>(de);
    const dim3 grid(unsigned(p.blocks), unsigned(p.groups));
    const bool vec = vector_ok<T>(hidden, {h, u, emb, de});
    auto kernel = vec ? soft_backward_kernel<T, true> : soft_backward_kernel<T, false>;
    // d > ~5,600: one row's dh and ubar and the kernel's static scratch exceed 48 KiB
    if (relat_status st = allow_dynamic_shared(kernel, p.smem, op); st != RELAT_OK) return st;
    RELAT_LAUNCH(grid, kThreads, p.smem, stream, kernel)(
        hs, us, es, lse, e32, ds, batch, hidden, vocab, inv_tau, p.group, p.rows, p.part, parts);
    const dim3 mgrid(unsigned(ceil_div(hidden, kThreads)), unsigned(batch));
    RELAT_LAUNCH(mgrid, kThreads, 0, stream, soft_sum_kernel<T>)(
        parts, p.blocks, p.group, p.part, hidden, inv_tau, e32, ds, static_cast<T *>(dh));
    return check_launch(op);
  });
}

extern "C" relat_status relat_cuda_row_rescale_forward(const void *x, void *y, int64_t rows,
                                                       int64_t cols, float target_norm,
                                                       float min_norm, relat_dtype dtype,
                                                       relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("row_rescale_forward", stream);
  const char *op = "row_rescale_forward";
  if (auto m = relat::validate::row_rescale(op, x, nullptr, y, rows, cols, target_norm, min_norm,
                                            dtype, false);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 rows", op);
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    RELAT_LAUNCH(unsigned(rows), row_block_size(cols), 0, stream, rescale_forward_kernel<T>)(
        static_cast<const T *>(x), static_cast<T *>(y), cols, target_norm, min_norm);
    return check_launch(op);
  });
}

extern "C" relat_status relat_cuda_row_rescale_backward(const void *x, const void *dy, void *dx,
                                                        int64_t rows, int64_t cols,
                                                        float target_norm, float min_norm,
                                                        relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("row_rescale_backward", stream);
  const char *op = "row_rescale_backward";
  if (auto m = relat::validate::row_rescale(op, x, dy, dx, rows, cols, target_norm, min_norm, dtype,
                                            true);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 rows", op);
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    RELAT_LAUNCH(unsigned(rows), row_block_size(cols), 0, stream, rescale_backward_kernel<T>)(
        static_cast<const T *>(x), static_cast<const T *>(dy), static_cast<T *>(dx), cols,
        target_norm, min_norm);
    return check_launch(op);
  });
}
