// Decode attention on CUDA (flash-decoding): one query token per sequence over its KV cache,
// forward only. CPU twin: native/src/decode_attention.cpp; semantics in relat.h.
//
// (1) split kernel, block = 4 warps for one (split, KV head, group of up to RW query heads,
// sequence). The RW query rows (pre-scaled by scale*log2 e) sit in shared memory; each warp takes
// 32 positions at a time, one per lane: the lane streams its K row from global memory (16-byte
// loads, 8 in flight) and dots it with the RW rows; online softmax in base 2 with the max over
// the warp; then the warp walks the 32 positions again, lanes now owning D/32 dims each, so every
// V row is read coalesced and multiplied by the broadcast probabilities. The 4 warps' (max, sum,
// acc) are merged in shared memory and the split's partial goes to the fp32 workspace. Every K/V
// byte of the split is read once per KV head whatever the group size g (RW = 8 covers g <= 8).
// (2) combine kernel, block = D threads per (query head, sequence): rescales the partials to
// the global max and writes out.
// Split plan (attention_plan.h, shared with the CPU twin): splits of >= 128 positions, at most 64
// per sequence (32k positions: 64 splits of 512; with hkv = 8 that is 512 blocks).
// Floor: bytes >= 2 * len * hkv * D * sizeof(T) per sequence (K and V once) + q/out + the
// workspace round trip (nsplit * hq * (D + 2) * 8 bytes, < 1% at 32k); FLOPs = 4 * len * hq * D,
// far below the fp32 peak per byte, so the kernel is bandwidth-bound: on an H200 (4.8 TB/s) a
// 32k bf16 cache with hkv = 8, D = 128 (128 MiB per layer) takes >= 28 us.
#include <type_traits>

#include "attention_common.cuh"
#include "validate.h"

namespace relat::cuda {
namespace {

using namespace attn;

constexpr int kThreads = 128;
constexpr int kWarps = 4;
constexpr int kMinBlocks = 3;  // <= 170 registers: RW = 8 in fp32 needs ~168 (no spills)
constexpr int kPS = 32 + 4;  // padded stride of the per-warp probability rows

template <class T, int D, int RW>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
decode_split_kernel(const T *__restrict__ q, const T *__restrict__ kc, const T *__restrict__ vc,
                    const int32_t *__restrict__ seq_lens, float *__restrict__ ws, int max_len,
                    int hq, int g, int64_t seq_stride, int64_t batch_stride, int nsplit,
                    int split_len, float c) {
  constexpr int N = D / 32;                 // dims per lane in the V pass
  constexpr int V = 16 / int(sizeof(T));    // elements per 16-byte K load
  constexpr int kLoads = D / V;             // 16-byte loads per K row
  constexpr int kBatch = kLoads < 8 ? kLoads : 8;
  __shared__ __align__(16) float Qs[RW * D];
  __shared__ __align__(16) float Ps[kWarps][RW * kPS];
  __shared__ float Ms[kWarps][RW], Ls[kWarps][RW];
  __shared__ __align__(16) float Acc[kWarps][RW * D];

  const int split = blockIdx.x, b = blockIdx.z;
  const int row_groups = (g + RW - 1) / RW;
  const int kvh = blockIdx.y / row_groups, j0 = (blockIdx.y % row_groups) * RW;
  int len = max_len;
  if (seq_lens) len = min(max(seq_lens[b], 0), max_len);
  const int s0 = split * split_len;
  if (s0 >= len) return;  // the whole block: nothing to do for this split
  const int s1 = min(len, s0 + split_len);
  const int rows = min(RW, g - j0), h0 = kvh * g + j0;

  for (int i = threadIdx.x; i < RW * D; i += kThreads) {
    const int r = i / D;
    Qs[i] = r < rows ? to_f32(q[(int64_t(b) * hq + h0 + r) * D + i % D]) * c : 0.f;
  }
  __syncthreads();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const T *kb = kc + int64_t(b) * batch_stride + int64_t(kvh) * D;
  const T *vb = vc + int64_t(b) * batch_stride + int64_t(kvh) * D;
  float *ps = Ps[warp];
  float m[RW], l[RW], acc[RW][N];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int u = 0; u < N; ++u) acc[r][u] = 0.f;
  }

  for (int base = s0 + warp * 32; base < s1; base += kWarps * 32) {
    const int key = base + lane;
    const bool ok = key < s1;
    float s[RW];
#pragma unroll
    for (int r = 0; r < RW; ++r) s[r] = 0.f;
    if (ok) {
      const T *kr = kb + int64_t(key) * seq_stride;
#pragma unroll
      for (int c0 = 0; c0 < kLoads; c0 += kBatch) {
        float kv[kBatch][V];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) load_vec<T, V>(kr + (c0 + u) * V, kv[u]);
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
#pragma unroll
          for (int w = 0; w < V; w += 4) {
            const int d = (c0 + u) * V + w;
            const float4 kk = make_float4(kv[u][w], kv[u][w + 1], kv[u][w + 2], kv[u][w + 3]);
#pragma unroll
            for (int r = 0; r < RW; ++r) s[r] = dot4(lds4(Qs + r * D + d), kk, s[r]);
          }
      }
    }
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      const float x = ok ? s[r] : -INFINITY;
      float mx = x;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_new = fmaxf(m[r], mx);  // finite: lane 0's position is valid
      const float alpha = exp2f(m[r] - m_new);
      const float p = exp2f(x - m_new);
      l[r] = l[r] * alpha + p;
      m[r] = m_new;
      ps[r * kPS + lane] = p;
#pragma unroll
      for (int u = 0; u < N; ++u) acc[r][u] *= alpha;
    }
    __syncwarp();
    const int nvalid = min(32, s1 - base);
    const T *vrow = vb + int64_t(base) * seq_stride + lane * N;
    if (nvalid == 32) {
#pragma unroll 4
      for (int j = 0; j < 32; j += 4) {
        float vv[4][N];
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) load_vec<T, N>(vrow + int64_t(j + jj) * seq_stride, vv[jj]);
#pragma unroll
        for (int r = 0; r < RW; ++r) {
          const float4 p4 = lds4(ps + r * kPS + j);
          const float pr[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
#pragma unroll
            for (int u = 0; u < N; ++u) acc[r][u] = fmaf(pr[jj], vv[jj][u], acc[r][u]);
        }
      }
    } else {
      for (int j = 0; j < nvalid; ++j) {
        float vv[N];
        load_vec<T, N>(vrow + int64_t(j) * seq_stride, vv);
#pragma unroll
        for (int r = 0; r < RW; ++r) {
          const float p = ps[r * kPS + j];
#pragma unroll
          for (int u = 0; u < N; ++u) acc[r][u] = fmaf(p, vv[u], acc[r][u]);
        }
      }
    }
    __syncwarp();
  }

  // Merge the 4 warps, then write the split's partial.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const float lt = warp_sum(l[r]);
    if (lane == 0) {
      Ms[warp][r] = m[r];
      Ls[warp][r] = lt;
    }
#pragma unroll
    for (int u = 0; u < N; ++u) Acc[warp][r * D + lane * N + u] = acc[r][u];
  }
  __syncthreads();
  const int64_t n = nsplit, bh = int64_t(gridDim.z) * hq;
  for (int i = threadIdx.x; i < rows * D; i += kThreads) {
    const int r = i / D, d = i % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, Ms[w][r]);
    float a = 0.f, lsum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(Ms[w][r] - mx);  // warps without positions: m = -inf, weight 0
      a = fmaf(Acc[w][r * D + d], f, a);
      lsum = fmaf(Ls[w][r], f, lsum);
    }
    const int64_t idx = (int64_t(b) * hq + h0 + r) * n + split;
    ws[2 * bh * n + idx * D + d] = a;
    if (d == 0) {
      ws[idx] = mx;
      ws[bh * n + idx] = lsum;
    }
  }
}

template <class T, int D>
__global__ void __launch_bounds__(D)
decode_combine_kernel(const float *__restrict__ ws, const int32_t *__restrict__ seq_lens,
                      T *__restrict__ out, int max_len, int hq, int nsplit, int split_len) {
  const int h = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
  int len = max_len;
  if (seq_lens) len = min(max(seq_lens[b], 0), max_len);
  const int used = (len + split_len - 1) / split_len;
  const int64_t n = nsplit, bh = int64_t(gridDim.y) * hq, idx0 = (int64_t(b) * hq + h) * n;
  const float *m = ws + idx0, *l = ws + bh * n + idx0, *acc = ws + 2 * bh * n + idx0 * D;
  float mx = -INFINITY;
  for (int s = 0; s < used; ++s) mx = fmaxf(mx, m[s]);
  float a = 0.f, lsum = 0.f;
  for (int s = 0; s < used; ++s) {
    const float f = exp2f(m[s] - mx);
    a = fmaf(acc[int64_t(s) * D + d], f, a);
    lsum = fmaf(l[s], f, lsum);
  }
  out[(int64_t(b) * hq + h) * D + d] = from_f32<T>(used == 0 ? 0.f : a / lsum);
}

template <class T, int D, int RW>
relat_status launch_split(const T *q, const T *kc, const T *vc, const int32_t *seq_lens, float *ws,
                          int64_t batch, int64_t max_len, int64_t hq, int64_t hkv,
                          int64_t seq_stride, int64_t batch_stride, int nsplit, int split_len,
                          float c, relat_stream stream) {
  const int g = int(hq / hkv);
  const dim3 grid(unsigned(nsplit), unsigned(hkv * ((g + RW - 1) / RW)), unsigned(batch));
  RELAT_LAUNCH(grid, kThreads, 0, stream, decode_split_kernel<T, D, RW>)(
      q, kc, vc, seq_lens, ws, int(max_len), int(hq), g, seq_stride, batch_stride, nsplit,
      split_len, c);
  return check_launch("decode_attention_forward");
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_decode_attention_workspace_bytes(int64_t batch, int64_t hq,
                                                                    int64_t head_dim,
                                                                    int64_t max_len,
                                                                    int64_t *bytes) {
  if (auto m =
          relat::validate::decode_attention_workspace_bytes(batch, hq, head_dim, max_len, bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = relat::plan::decode_plan(batch, hq, head_dim, max_len).workspace_bytes;
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_decode_attention_forward(
    const void *q, const void *k_cache, const void *v_cache, void *out, const int32_t *seq_lens,
    int64_t batch, int64_t max_len, int64_t hq, int64_t hkv, int64_t head_dim,
    int64_t cache_seq_stride, int64_t cache_batch_stride, float scale, float *workspace,
    int64_t workspace_bytes, relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("decode_attention_forward", stream);
  if (auto m = relat::validate::decode_attention_forward(
          q, k_cache, v_cache, out, batch, max_len, hq, hkv, head_dim, cache_seq_stride,
          cache_batch_stride, scale, workspace, workspace_bytes, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (batch == 0) return RELAT_OK;
  const relat::plan::DecodePlan plan = relat::plan::decode_plan(batch, hq, head_dim, max_len);
  const int nsplit = int(plan.num_splits), split_len = int(plan.split_len);
  const int g = int(hq / hkv);
  const float c = scale * relat::cuda::attn::kLog2e;
  return dispatch_dtype(dtype, "decode_attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto run = [&](auto dim) -> relat_status {
      constexpr int D = decltype(dim)::value;
      const T *qt = static_cast<const T *>(q);
      const T *kt = static_cast<const T *>(k_cache);
      const T *vt = static_cast<const T *>(v_cache);
      if (nsplit > 0) {
        relat_status s;
        if (g == 1)
          s = launch_split<T, D, 1>(qt, kt, vt, seq_lens, workspace, batch, max_len, hq, hkv,
                                    cache_seq_stride, cache_batch_stride, nsplit, split_len, c, stream);
        else if (g == 2)
          s = launch_split<T, D, 2>(qt, kt, vt, seq_lens, workspace, batch, max_len, hq, hkv,
                                    cache_seq_stride, cache_batch_stride, nsplit, split_len, c, stream);
        else if (g <= 4)
          s = launch_split<T, D, 4>(qt, kt, vt, seq_lens, workspace, batch, max_len, hq, hkv,
                                    cache_seq_stride, cache_batch_stride, nsplit, split_len, c, stream);
        else
          s = launch_split<T, D, 8>(qt, kt, vt, seq_lens, workspace, batch, max_len, hq, hkv,
                                    cache_seq_stride, cache_batch_stride, nsplit, split_len, c, stream);
        if (s != RELAT_OK) return s;
      }
      RELAT_LAUNCH(dim3(unsigned(hq), unsigned(batch)), D, 0, stream, decode_combine_kernel<T, D>)(
          workspace, seq_lens, static_cast<T *>(out), int(max_len), int(hq), nsplit,
          split_len);
      return check_launch("decode_attention_forward");
    };
    if (head_dim == 64) return run(std::integral_constant<int, 64>{});
    return run(std::integral_constant<int, 128>{});
  });
}
