// Fused linear cross-entropy on CUDA. CPU twin: native/src/linear_cross_entropy.cpp (same math,
// same outputs; see relat.h for the contract).
//
// What is fused: the LM-head GEMM, the log-sum-exp over the vocabulary, the NLL of the targets,
// the mean over counted positions (counted on the device) and the gradient GEMM
// dH = (softmax - onehot) U / count. The [T, V] logits never exist: the vocabulary is swept in
// chunks of Vc rows (Vc = 512..8192, so that T x Vc fp32 <= 8 MiB), with an online log-sum-exp and
// ONE pass (flash-attention style rescaling), so no logit is recomputed:
//   per chunk c:  S = H_counted U_c^T                        (logits_kernel: tensor cores, fp32 out)
//                 m' = max(m, rowmax S), alpha = exp(m - m'), P = exp(S - m'), l = alpha l + sum P,
//                 acc *= alpha                                (softmax_kernel: one block per row;
//                                                             P overwrites S in place, in dtype)
//                 acc += P U_c                               (accum_kernel: tensor cores, split-K
//                                                             over the chunk with fp32 atomics when
//                                                             the [T, d] tiles do not fill the GPU)
//   at the end:   dH = (acc / l + (p_t - 1) U[target]) / count, loss_t = m + log l - logit_target
//                 (finalize_kernel), loss = mean (loss_kernel, fixed-order reduction); the target's
//                 own column is zeroed in P so that p_t - 1 is formed in fp32 (no cancellation of
//                 a bf16-rounded p_t against 1 when the prediction is confident).
// Counted rows are compacted first (prepare_kernel), so ignored positions cost nothing: blocks of
// rows past the device-side count exit at once.
// FLOPs: 2 T V d (logits) + 2 T V d (P U) = exactly the two GEMMs of the unfused math; no
// recomputation. Bytes (floor): U read once per 128-row block of counted tokens, ceil(T/128) V d
// sizeof(T); H once per chunk (L2-resident); S written and read once as fp32 and P once in dtype:
// ~10 T V bytes, plus acc read-modified-written once per chunk (8 T d bytes per chunk).
// For T = 512, d = 4096, V = 151,936 in bf16: 1.27 TFLOP against ~0.8 GB of traffic, i.e.
// compute-bound (> 1000 FLOP/byte).
// Tensor cores: mma.sync m16n8k16 bf16/fp16 with fp32 accumulation, 128 x 128 x 32 CTA tiles of 8
// warps (64 x 32 warp tiles), operands staged through registers into padded shared memory
// (conflict-free fragment loads), not cp.async/ldmatrix/wgmma. Not measured here (no GPU in the
// development environment): we expect 40-60% of the mma.sync peak, i.e. roughly 25-40% of the
// dense bf16 peak on H100/H200 (which wgmma would raise) and 40-55% on A100. fp32 storage runs on
// exact fp32 SIMT FMAs (64 x 64 tiles), roughly 40-60% of the fp32 peak.
// Extra memory (the workspace): T x Vc fp32 (S/P, <= 8 MiB) + T x d fp32 (acc) + 7 T x 4 bytes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_common.cuh"
#include "tile_gemm.cuh"
#include "validate.h"

namespace relat::cuda {
namespace {

constexpr int kRowThreads = 256;
constexpr int64_t kAlign = 256;

constexpr int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
constexpr int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

// Chunk of the vocabulary per sweep step: the largest power of two in [512, 8192] with
// tokens x chunk x 4 bytes <= 8 MiB.
int64_t chunk_rows(int64_t tokens, int64_t vocab) {
  int64_t vc = 8192;
  while (vc > 512 && tokens * vc > (int64_t(1) << 21)) vc /= 2;
  return std::min(vc, round_up(vocab, 128));
}

struct Layout {
  int64_t vc = 0;
  int64_t slot = 0, rows = 0, count = 0, m = 0, l = 0, tgt = 0, rowloss = 0, s = 0, acc = 0;
  int64_t total = 0;
};

Layout make_layout(int64_t tokens, int64_t hidden, int64_t vocab) {
  Layout L;
  L.vc = chunk_rows(tokens, vocab);
  int64_t off = 0;
  auto take = [&](int64_t bytes) {
    const int64_t at = off;
    off += round_up(bytes, kAlign);
    return at;
  };
  L.slot = take(tokens * 4);
  L.rows = take(tokens * 4);
  L.count = take(4);
  L.m = take(tokens * 4);
  L.l = take(tokens * 4);
  L.tgt = take(tokens * 4);
  L.rowloss = take(tokens * 4);
  L.s = take(tokens * L.vc * 4);
  L.acc = take(tokens * hidden * 4);
  L.total = tokens > 0 ? off + kAlign : 0;
  return L;
}

// ---- prepare: compact the counted rows (stable order), count them on the device ----------------

__global__ void __launch_bounds__(1024) prepare_kernel(const int64_t *__restrict__ targets,
                                                       int64_t ignore_index, int tokens,
                                                       int *__restrict__ slot,
                                                       int *__restrict__ rows,
                                                       int *__restrict__ count,
                                                       float *__restrict__ tgt) {
  __shared__ int scan[1024];
  __shared__ int base;
  const int tid = int(threadIdx.x);
  if (tid == 0) base = 0;
  __syncthreads();
  for (int c0 = 0; c0 < tokens; c0 += 1024) {
    const int t = c0 + tid;
    const int flag = (t < tokens && targets[t] != ignore_index) ? 1 : 0;
    scan[tid] = flag;
    __syncthreads();
    for (int off = 1; off < 1024; off <<= 1) {  // inclusive Hillis-Steele scan
      const int v = tid >= off ? scan[tid - off] : 0;
      __syncthreads();
      scan[tid] += v;
      __syncthreads();
    }
    const int pos = base + scan[tid] - flag;
    if (t < tokens) {
      slot[t] = flag ? pos : -1;
      if (flag) {
        rows[pos] = t;
        tgt[pos] = __int_as_float(0x7fc00000);  // NaN until the chunk holding the target is seen
      }
    }
    __syncthreads();
    if (tid == 1023) base += scan[1023];
    __syncthreads();
  }
  if (tid == 0) *count = base;
}

// ---- chunk GEMM 1: S[r][j] = H[rows[r]] . U[v0 + j] ------------------------------------------

template <class E, class T>
__global__ void __launch_bounds__(kGemmThreads) logits_kernel(const T *__restrict__ h,
                                                              const T *__restrict__ u,
                                                              const int *__restrict__ rows,
                                                              const int *__restrict__ count,
                                                              float *__restrict__ s, int64_t lds,
                                                              int64_t d, int64_t v0, int nv,
                                                              bool vec) {
  const int n = *count;
  const int m0 = int(blockIdx.y) * E::BM, n0 = int(blockIdx.x) * E::BN;
  if (m0 >= n) return;
  __shared__ typename E::Smem sm;
  E eng;
  eng.zero();
  const T *arow[E::kASlots], *brow[E::kASlots];
#pragma unroll
  for (int q = 0; q < E::kASlots; ++q) {
    const int r = m0 + E::row_of(q), c = n0 + E::row_of(q);
    arow[q] = r < n ? h + int64_t(rows[r]) * d : nullptr;
    brow[q] = c < nv ? u + (v0 + c) * d : nullptr;
  }
  const int64_t nk = ceil_div(d, E::BK);
  eng.load_a(arow, 0, d, vec);
  eng.load_bk(brow, 0, d, vec);
  eng.store_a(sm);
  eng.store_bk(sm);
  __syncthreads();
  for (int64_t kt = 0; kt < nk; ++kt) {
    if (kt + 1 < nk) {
      eng.load_a(arow, (kt + 1) * E::BK, d, vec);
      eng.load_bk(brow, (kt + 1) * E::BK, d, vec);
    }
    eng.compute(sm);
    __syncthreads();
    if (kt + 1 < nk) {
      eng.store_a(sm);
      eng.store_bk(sm);
      __syncthreads();
    }
  }
  eng.for_each([&](int i, int j, float v) {
    const int r = m0 + i, c = n0 + j;
    if (r < n && c < nv) s[int64_t(r) * lds + c] = v;
  });
}

// ---- per-row online softmax update over the chunk ---------------------------------------------

__device__ __forceinline__ float block_max(float v, float *scratch) {
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : -INFINITY;
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}

// One block per counted row r: reads S[r][0..nv) into shared memory, updates (m, l), writes
// P = exp(S - m') in dtype over the same row (in place: every read happens before the first
// write), captures the target logit, and rescales the row's accumulator by alpha (zeroes it on
// the first chunk).
template <class T>
__global__ void __launch_bounds__(kRowThreads) softmax_kernel(
    float *__restrict__ s, int64_t lds, const int64_t *__restrict__ targets,
    const int *__restrict__ rows, const int *__restrict__ count, float *__restrict__ m,
    float *__restrict__ l, float *__restrict__ tgt, float *__restrict__ acc, int64_t d, int64_t v0,
    int nv, bool first) {
  extern __shared__ float row_s[];
  __shared__ float scratch[32];
  const int r = int(blockIdx.x);
  if (r >= *count) return;
  float *srow = s + int64_t(r) * lds;
  float mx = -INFINITY;
  for (int j = int(threadIdx.x); j < nv; j += int(blockDim.x)) {
    const float v = srow[j];
    row_s[j] = v;
    mx = fmaxf(mx, v);
  }
  mx = block_max(mx, scratch);  // also a barrier: row_s is complete, srow is no longer read
  const float m_old = first ? -INFINITY : m[r];
  const float m_new = fmaxf(m_old, mx);
  const float alpha = first ? 0.f : expf(m_old - m_new);
  T *prow = reinterpret_cast<T *>(srow);
  float sum = 0.f;
  for (int j = int(threadIdx.x); j < nv; j += int(blockDim.x)) {
    const float p = expf(row_s[j] - m_new);
    prow[j] = from_f32<T>(p);
    sum += p;
  }
  sum = block_sum(sum, scratch);  // ends with a barrier: every P element is written
  if (threadIdx.x == 0) {
    l[r] = first ? sum : alpha * l[r] + sum;
    m[r] = m_new;
    const int64_t t = targets[rows[r]];
    if (t >= v0 && t < v0 + nv) {
      tgt[r] = row_s[t - v0];
      // The target's own term stays out of acc: finalize adds (p_t - 1) U[t] with p_t in fp32,
      // so a confident prediction (p_t near 1) does not cancel against a rounded P.
      prow[t - v0] = from_f32<T>(0.f);
    }
  }
  float *arow = acc + int64_t(r) * d;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) arow[k] = first ? 0.f : arow[k] * alpha;
}

// ---- chunk GEMM 2: acc[r][n] += sum_j P[r][j] U[v0 + j][n] over this block's slice of j --------

template <class E, class T>
__global__ void __launch_bounds__(kGemmThreads) accum_kernel(const T *__restrict__ p, int64_t ldp,
                                                             const T *__restrict__ u,
                                                             const int *__restrict__ count,
                                                             float *__restrict__ acc, int64_t d,
                                                             int64_t v0, int nv, int kper,
                                                             bool vec_u) {
  const int n = *count;
  const int m0 = int(blockIdx.y) * E::BM;
  const int64_t n0 = int64_t(blockIdx.x) * E::BN;
  const int kb = int(blockIdx.z) * kper, ke = min(nv, kb + kper);
  if (m0 >= n || kb >= ke) return;
  __shared__ typename E::Smem sm;
  E eng;
  eng.zero();
  const T *arow[E::kASlots];
#pragma unroll
  for (int q = 0; q < E::kASlots; ++q) {
    const int r = m0 + E::row_of(q);
    arow[q] = r < n ? p + int64_t(r) * ldp : nullptr;
  }
  const int64_t nend = d - n0;
  auto load_b = [&](int k0) {
    if constexpr (std::is_same<E, SimtEngine>::value) {
      const int k = k0 + E::bn_k();
      eng.load_bn(k < ke ? u + (v0 + k) * d + n0 : nullptr, nend, vec_u);
    } else {
      const int k = k0 + 2 * E::bn_kpair();
      eng.load_bn(k < ke ? u + (v0 + k) * d + n0 : nullptr,
                  k + 1 < ke ? u + (v0 + k + 1) * d + n0 : nullptr, nend, vec_u);
    }
  };
  const int nk = (ke - kb + E::BK - 1) / E::BK;
  eng.load_a(arow, kb, ke, true);
  load_b(kb);
  eng.store_a(sm);
  eng.store_bn(sm);
  __syncthreads();
  for (int kt = 0; kt < nk; ++kt) {
    if (kt + 1 < nk) {
      eng.load_a(arow, kb + (kt + 1) * E::BK, ke, true);
      load_b(kb + (kt + 1) * E::BK);
    }
    eng.compute(sm);
    __syncthreads();
    if (kt + 1 < nk) {
      eng.store_a(sm);
      eng.store_bn(sm);
      __syncthreads();
    }
  }
  eng.for_each([&](int i, int j, float v) {
    const int r = m0 + i;
    const int64_t c = n0 + j;
    if (r < n && c < d) atomicAdd(acc + int64_t(r) * d + c, v);
  });
}

// ---- finish: dH rows, per-row losses, the mean ------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kRowThreads) finalize_kernel(
    const T *__restrict__ u, const int64_t *__restrict__ targets, const int *__restrict__ slot,
    const int *__restrict__ count, const float *__restrict__ m, const float *__restrict__ l,
    const float *__restrict__ tgt, const float *__restrict__ acc, float *__restrict__ rowloss,
    T *__restrict__ dh, int64_t d, int64_t vocab) {
  const int64_t t = blockIdx.x;
  const int c = slot[t];
  T *out = dh + t * d;
  if (c < 0) {
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) out[k] = from_f32<T>(0.f);
    return;
  }
  const int64_t target = targets[t];
  if (target < 0 || target >= vocab) {
    const float nan = __int_as_float(0x7fc00000);
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) out[k] = from_f32<T>(nan);
    if (threadIdx.x == 0) rowloss[c] = nan;
    return;
  }
  const float inv_l = 1.f / l[c], inv_count = 1.f / float(*count);
  const float lse = m[c] + logf(l[c]);
  const float wt = expf(tgt[c] - lse) - 1.f;  // p_t - 1; acc holds every other vocabulary row
  const float *a = acc + int64_t(c) * d;
  const T *ut = u + target * d;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
    out[k] = from_f32<T>((a[k] * inv_l + wt * to_f32(ut[k])) * inv_count);
  if (threadIdx.x == 0) rowloss[c] = lse - tgt[c];
}

// Fixed-order reduction (each thread a fixed stride, then a fixed tree): deterministic.
__global__ void __launch_bounds__(1024) loss_kernel(const float *__restrict__ rowloss,
                                                    const int *__restrict__ count,
                                                    float *__restrict__ loss) {
  __shared__ float scratch[32];
  const int n = *count;
  float v = 0.f;
  for (int c = int(threadIdx.x); c < n; c += int(blockDim.x)) v += rowloss[c];
  v = block_sum(v, scratch);
  if (threadIdx.x == 0) *loss = n > 0 ? v / float(n) : __int_as_float(0x7fc00000);
}

__global__ void nan_kernel(float *loss) { *loss = __int_as_float(0x7fc00000); }

bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class E, class T>
relat_status run(const T *h, const T *u, const int64_t *targets, int64_t ignore_index, float *loss,
                 T *dh, int64_t tokens, int64_t hidden, int64_t vocab, char *ws,
                 relat_stream stream) {
  const char *op = "linear_cross_entropy";
  const Layout L = make_layout(tokens, hidden, vocab);
  int *slot = reinterpret_cast<int *>(ws + L.slot);
  int *rows = reinterpret_cast<int *>(ws + L.rows);
  int *count = reinterpret_cast<int *>(ws + L.count);
  float *m = reinterpret_cast<float *>(ws + L.m);
  float *l = reinterpret_cast<float *>(ws + L.l);
  float *tgt = reinterpret_cast<float *>(ws + L.tgt);
  float *rowloss = reinterpret_cast<float *>(ws + L.rowloss);
  float *s = reinterpret_cast<float *>(ws + L.s);
  float *acc = reinterpret_cast<float *>(ws + L.acc);

  RELAT_LAUNCH(1, 1024, 0, stream, prepare_kernel)(targets, ignore_index, int(tokens), slot, rows,
                                                   count, tgt);
  if (relat_status st = check_launch(op); st != RELAT_OK) return st;

  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();
    sms = 108;
  }
  constexpr int kElemsPer16B = int(16 / sizeof(T));
  const bool vec_hu = hidden % kElemsPer16B == 0 && aligned16(h) && aligned16(u);
  const bool vec_u = hidden % kElemsPer16B == 0 && aligned16(u);
  const int64_t ldp = L.vc * int64_t(sizeof(float) / sizeof(T));  // P rows overlay S rows
  const int64_t mtiles = ceil_div(tokens, E::BM);
  const int64_t ntiles = ceil_div(hidden, E::BN);
  const size_t row_smem = size_t(L.vc) * sizeof(float);
  for (int64_t v0 = 0; v0 < vocab; v0 += L.vc) {
    const int nv = int(std::min(L.vc, vocab - v0));
    const bool first = v0 == 0;
    const dim3 g1(unsigned(ceil_div(nv, E::BN)), unsigned(mtiles));
    RELAT_LAUNCH(g1, kGemmThreads, 0, stream, logits_kernel<E, T>)(h, u, rows, count, s, L.vc,
                                                                    hidden, v0, nv, vec_hu);
    RELAT_LAUNCH(unsigned(tokens), kRowThreads, row_smem, stream, softmax_kernel<T>)(
        s, L.vc, targets, rows, count, m, l, tgt, acc, hidden, v0, nv, first);
    // Split the chunk's depth when the [T, d] tiles alone would leave the GPU half idle.
    int64_t ksplit = std::max<int64_t>(1, ceil_div(2 * sms, mtiles * ntiles));
    ksplit = std::min<int64_t>(ksplit, std::max<int64_t>(1, nv / 256));
    const int kper = int(round_up(ceil_div(nv, ksplit), E::BK));
    ksplit = ceil_div(nv, kper);
    const dim3 g2(static_cast<unsigned>(ntiles), static_cast<unsigned>(mtiles),
                  static_cast<unsigned>(ksplit));
    RELAT_LAUNCH(g2, kGemmThreads, 0, stream, accum_kernel<E, T>)(
        reinterpret_cast<const T *>(s), ldp, u, count, acc, hidden, v0, nv, kper, vec_u);
    if (relat_status st = check_launch(op); st != RELAT_OK) return st;
  }
  RELAT_LAUNCH(unsigned(tokens), kRowThreads, 0, stream, finalize_kernel<T>)(
      u, targets, slot, count, m, l, tgt, acc, rowloss, dh, hidden, vocab);
  RELAT_LAUNCH(1, 1024, 0, stream, loss_kernel)(rowloss, count, loss);
  return check_launch(op);
}

char *aligned(void *p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<char *>((a + kAlign - 1) / kAlign * kAlign);
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_linear_cross_entropy_workspace_bytes(
    int64_t tokens, int64_t hidden, int64_t vocab, relat_dtype dtype, int64_t *bytes) {
  if (auto m = relat::validate::linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, dtype,
                                                                     bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = make_layout(tokens, hidden, vocab).total;
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_linear_cross_entropy(const void *h, const void *u,
                                                        const int64_t *targets, int64_t ignore_index,
                                                        float *loss, void *dh, int64_t tokens,
                                                        int64_t hidden, int64_t vocab,
                                                        void *workspace, int64_t workspace_bytes,
                                                        relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("linear_cross_entropy", stream);
  const char *op = "linear_cross_entropy";
  if (auto m = relat::validate::linear_cross_entropy(h, u, targets, loss, dh, tokens, hidden, vocab,
                                                     dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes,
                                          make_layout(tokens, hidden, vocab).total);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tokens > 0x7fffffffLL) return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 tokens", op);
  if (tokens == 0) {
    RELAT_LAUNCH(1, 1, 0, stream, nan_kernel)(loss);
    return check_launch(op);
  }
  char *ws = aligned(workspace);
  switch (dtype) {
    case RELAT_F32:
      return run<SimtEngine, float>(static_cast<const float *>(h), static_cast<const float *>(u),
                                    targets, ignore_index, loss, static_cast<float *>(dh), tokens,
                                    hidden, vocab, ws, stream);
    case RELAT_BF16:
      return run<MmaEngine<__nv_bfloat16>, __nv_bfloat16>(
          static_cast<const __nv_bfloat16 *>(h), static_cast<const __nv_bfloat16 *>(u), targets,
          ignore_index, loss, static_cast<__nv_bfloat16 *>(dh), tokens, hidden, vocab, ws, stream);
    case RELAT_F16:
      return run<MmaEngine<__half>, __half>(static_cast<const __half *>(h),
                                            static_cast<const __half *>(u), targets, ignore_index,
                                            loss, static_cast<__half *>(dh), tokens, hidden, vocab,
                                            ws, stream);
  }
  return fail(RELAT_ERR_INVALID_ARGUMENT, "%s: unknown dtype tag %d", op, int(dtype));
}
