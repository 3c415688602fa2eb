// Decode attention: one query token per sequence over its KV cache, forward only.
// CPU twin of kernels/decode_attention.cu; semantics in relat.h.
//
// Split the way the CUDA kernel does (attention_plan.h): tasks = (sequence, split), OpenMP-
// parallel. A task walks its split in tiles of 64 positions and, per tile, every KV head in turn
// (so the cache streams from memory in address order; the per-head rows of a tile then come from
// cache), with up to 8 of the g query heads of that KV head at a time: K and V rows converted to
// dense fp32, scores as dot products of each K row with the few queries (no transposed tile, no
// rows padded for a GEMM micro-kernel), online softmax along each row, O += P V on the
// micro-kernels (attention_cpu.h). The running (max, sum, unnormalised acc) of each query head
// lives in its workspace slot for the split; the combine pass, parallel over (sequence, query
// head), rescales the partials to the global max and writes out.
// Floor: bytes >= 2 * len * hkv * D * sizeof(T) per sequence (K and V read once) + q/out;
// FLOPs = 4 * len * hq * D. At Qwen3-0.6B sizes (hkv = 8, D = 128, bf16) a 32k cache is 128 MiB
// per layer, so this op is bound by memory bandwidth.
#include "attention_cpu.h"
#include "validate.h"

namespace relat::cpu {
namespace {

using namespace attn;

struct DecodeShape {
  int64_t batch, max_len, hq, hkv, g, seq_stride, batch_stride, nsplit, split_len;
  float c;  // scale * log2(e)
};

int64_t length_of(const int32_t *seq_lens, int64_t b, int64_t max_len) {
  if (!seq_lens) return max_len;
  return std::clamp<int64_t>(seq_lens[b], 0, max_len);
}

// Positions per tile when every KV head of a tile is converted at once: the tile's K and V rows,
// all heads, fit kTileFloats fp32 values each.
constexpr int64_t kTileFloats = 16384;

// One (sequence, split) task. It streams the cache in address order: per tile of positions it
// converts the K and V rows of every KV head to fp32 (reading whole position rows, contiguous
// when the cache is), then runs each KV head's query heads over their slice. The running
// (max, sum, acc) of every query head lives in its workspace slot for this split.
template <class T, int D>
RELAT_VECTOR_CLONES void split_task(const T *q, const T *kc, const T *vc, float *ws,
                                    const DecodeShape &sh, int64_t b, int64_t split, int64_t len) {
  alignas(64) float qf[8 * D];
  alignas(64) float kf[kTileFloats];
  alignas(64) float vf[kTileFloats];
  alignas(64) float s[8 * kBN];
  // Positions per tile: a multiple of 8 (the dot-product blocks), at most kBN.
  const int tile = int(std::min<int64_t>(kBN, kTileFloats / (sh.hkv * D) / 8 * 8));
  const int64_t n = sh.nsplit, bh = sh.batch * sh.hq;
  float *m_ws = ws, *l_ws = ws + bh * n, *acc_ws = ws + 2 * bh * n;
  for (int64_t h = 0; h < sh.hq; ++h) {
    const int64_t idx = (b * sh.hq + h) * n + split;
    m_ws[idx] = kNegInf;
    l_ws[idx] = 0.f;
    std::fill(acc_ws + idx * D, acc_ws + (idx + 1) * D, 0.f);
  }
  const int64_t s0 = split * sh.split_len, s1 = std::min(len, s0 + sh.split_len);
  const T *kseq = kc + b * sh.batch_stride, *vseq = vc + b * sh.batch_stride;
  const int64_t row = sh.hkv * D;  // elements of one position, all heads
  for (int64_t k0 = s0; k0 < s1; k0 += tile) {
    const int nk = int(std::min<int64_t>(tile, s1 - k0)), padded = (nk + 7) / 8 * 8;
    // kf/vf: [kvh][padded][D]; position rows past nk are zero.
    for (int j = 0; j < padded; ++j) {
      const T *kr = kseq + (k0 + j) * sh.seq_stride, *vr = vseq + (k0 + j) * sh.seq_stride;
      for (int64_t e = 0; e < row; e += 8) {
        v8f x = v8f{}, y = v8f{};
        if (j < nk)
          for (int u = 0; u < 8; ++u) {
            x[u] = to_f32(kr[e + u]);
            y[u] = to_f32(vr[e + u]);
          }
        const int64_t head = e / D, off = (head * padded + j) * D + e % D;
        store8(kf + off, x);
        store8(vf + off, y);
      }
    }
    for (int64_t kvh = 0; kvh < sh.hkv; ++kvh) {
      const float *kh = kf + kvh * padded * D, *vh = vf + kvh * padded * D;
      for (int64_t j0 = 0; j0 < sh.g; j0 += 8) {  // up to 8 of the g query heads at a time
        const int rows = int(std::min<int64_t>(8, sh.g - j0));
        const int64_t h0 = kvh * sh.g + j0, idx0 = (b * sh.hq + h0) * n + split;
        for (int r = 0; r < rows; ++r)
          for (int d = 0; d < D; ++d) qf[r * D + d] = to_f32(q[(b * sh.hq + h0 + r) * D + d]) * sh.c;
        attend_tile_rows<D>(qf, rows, kh, vh, nk, s, acc_ws + idx0 * D, n * D, m_ws + idx0,
                            l_ws + idx0, n);
      }
    }
  }
}

template <class T, int D>
RELAT_VECTOR_CLONES void combine_row(float *ws, T *out, const DecodeShape &sh, int64_t b,
                                     int64_t h, int64_t len) {
  T *o = out + (b * sh.hq + h) * D;
  const int64_t n = sh.nsplit;
  const int64_t used = len == 0 ? 0 : (len + sh.split_len - 1) / sh.split_len;
  const int64_t idx0 = (b * sh.hq + h) * n;
  const float *m = ws + idx0, *l = ws + sh.batch * sh.hq * n + idx0;
  const float *acc = ws + 2 * sh.batch * sh.hq * n + idx0 * D;
  float mx = kNegInf;
  for (int64_t s = 0; s < used; ++s) mx = std::max(mx, m[s]);
  alignas(64) float sum[D];
  std::fill(sum, sum + D, 0.f);
  float total = 0.f;
  for (int64_t s = 0; s < used; ++s) {
    const float w = exp2s(m[s] - mx);
    total += l[s] * w;
#pragma omp simd
    for (int d = 0; d < D; ++d) sum[d] += acc[s * D + d] * w;
  }
  const float inv = used == 0 ? 0.f : 1.f / total;
  for (int d = 0; d < D; ++d) o[d] = from_f32<T>(sum[d] * inv);
}

template <class T, int D>
relat_status decode_impl(const T *q, const T *kc, const T *vc, T *out, const int32_t *seq_lens,
                         float *ws, const DecodeShape &sh) {
  const int64_t tasks = sh.batch * sh.nsplit;
  // One task (a short cache: one split) or a small combine stays on the calling thread: waking a
  // sleeping worker costs more than the work.
  const bool parallel = sh.max_len * sh.hkv * D * sh.batch >= kParallelMinElements && tasks > 1;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t i = 0; i < tasks; ++i) {
    const int64_t split = i % sh.nsplit, b = i / sh.nsplit;
    const int64_t len = length_of(seq_lens, b, sh.max_len);
    if (split * sh.split_len >= len) continue;
    split_task<T, D>(q, kc, vc, ws, sh, b, split, len);
  }
#pragma omp parallel for schedule(static) if (sh.batch * sh.hq * sh.nsplit * D >= kParallelMinElements)
  for (int64_t i = 0; i < sh.batch * sh.hq; ++i) {
    const int64_t b = i / sh.hq;
    combine_row<T, D>(ws, out, sh, b, i % sh.hq, length_of(seq_lens, b, sh.max_len));
  }
  return RELAT_OK;
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_decode_attention_workspace_bytes(int64_t batch, int64_t hq,
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

extern "C" relat_status relat_cpu_decode_attention_forward(
    const void *q, const void *k_cache, const void *v_cache, void *out, const int32_t *seq_lens,
    int64_t batch, int64_t max_len, int64_t hq, int64_t hkv, int64_t head_dim,
    int64_t cache_seq_stride, int64_t cache_batch_stride, float scale, float *workspace,
    int64_t workspace_bytes, relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::decode_attention_forward(
          q, k_cache, v_cache, out, batch, max_len, hq, hkv, head_dim, cache_seq_stride,
          cache_batch_stride, scale, workspace, workspace_bytes, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (batch == 0) return RELAT_OK;
  DecodeShape sh;
  sh.batch = batch;
  sh.max_len = max_len;
  sh.hq = hq;
  sh.hkv = hkv;
  sh.g = hq / hkv;
  sh.seq_stride = cache_seq_stride;
  sh.batch_stride = cache_batch_stride;
  const relat::plan::DecodePlan plan = relat::plan::decode_plan(batch, hq, head_dim, max_len);
  sh.nsplit = plan.num_splits;
  sh.split_len = plan.split_len;
  sh.c = scale * kLog2e;
  return dispatch_dtype(dtype, "decode_attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto run = [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      return decode_impl<T, D>(static_cast<const T *>(q), static_cast<const T *>(k_cache),
                               static_cast<const T *>(v_cache), static_cast<T *>(out), seq_lens,
                               workspace, sh);
    };
    if (head_dim == 64) return run(std::integral_constant<int, 64>{});
    return run(std::integral_constant<int, 128>{});
  });
}
