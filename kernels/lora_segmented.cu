// Segmented LoRA (one adapter per question, S-LoRA / Punica "segmented GEMV"), forward and
// backward, on CUDA. CPU twin: native/src/lora_segmented.cpp.
//
// Isolation: a block only ever works on rows of one segment (tiles never straddle a segment
// boundary), every output element is written by exactly one thread, and every sum runs in an
// order fixed by the shapes and the vector width alone (per-thread strided partials, a butterfly
// warp sum, then the warps in order): a segment's results are the same bits whatever the other
// segments hold and however many there are. No atomics.
// The offsets stay on the device: block x of a row kernel finds its tile by scanning them (at most
// RELAT_LORA_MAX_SEGMENTS + 1 values, thread 0), tiles numbered segment by segment, kTileRows rows
// each; the grid has ceil(rows / kTileRows) + segments blocks, an upper bound on the tile count,
// and the surplus blocks return at once.
// Row kernel (forward, and dx of the backward), per tile of <= 8 rows and chunk of output columns:
//   shrink: s[i, k] = x[i] . a[k] (forward) or dy[i] . b[:, k] (dx), 4 adapter rows per pass over
//           the tile, V-element (16-byte) loads of the activations and of a;
//   expand: y[i, j] += round(scale * sum_k b[j, k] s[i, k]) (or dx with a), V columns per thread.
//   The shrink is redone by each column chunk; chunks are at least a quarter of the shrunk length
//   wide, so that costs at most 4x the expand's FLOPs (all from L2).
// Weight-gradient kernel, per segment and 256 columns of da (or 256 rows of db): walks the
// segment's rows in tiles, recomputing G (resp. U) for the tile with the same shrink, and each
// thread sums its column over the rows in order (rank accumulators in registers). Without a
// workspace G / U cannot be kept between blocks, so each da block redoes G: the backward's FLOPs
// grow with ceil(in / 256) * n * out * rank (a known cost; a workspace variant would remove it).
// Floors (S = sizeof(storage), n = rows): forward bytes n*(in + 2*out)*S + the adapters read
// (segments*rank*(in + out)*4), FLOPs 2*n*rank*(in + out); bandwidth-bound at decode sizes.
#include "cuda_common.cuh"
#include "validate.h"
#include "vector_io.cuh"

namespace relat::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kTileRows = 8;  // rows of one segment per block pass
constexpr int kGroup = 4;     // adapter rows (rank indices) per pass of the shrink
constexpr int kMaxRank = RELAT_LORA_MAX_RANK;

__device__ __forceinline__ int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

// Rows [begin, end) of segment `segment`, each bound clamped into [previous bound, rows] so that
// bad offsets can never send a block outside the matrix.
__device__ __forceinline__ void segment_rows(const int64_t *offsets, int segment, int64_t rows,
                                             int64_t *begin, int64_t *end) {
  int64_t b = clamp64(offsets[0], 0, rows), e = b;
  for (int s = 0; s <= segment; ++s) {
    b = e;
    e = clamp64(offsets[s + 1], b, rows);
  }
  *begin = b;
  *end = e;
}

// Tile `tile` of the row tiling: info = {first row, row count (0 for a surplus block), segment}.
__device__ __forceinline__ void find_tile(const int64_t *offsets, int segments, int64_t rows,
                                          int64_t tile, int64_t *info) {
  int64_t begin = clamp64(offsets[0], 0, rows), first = 0;
  info[1] = 0;
  for (int s = 0; s < segments; ++s) {
    const int64_t end = clamp64(offsets[s + 1], begin, rows);
    const int64_t tiles = (end - begin + kTileRows - 1) / kTileRows;
    if (tile < first + tiles) {
      info[0] = begin + (tile - first) * kTileRows;
      info[1] = end - info[0] < kTileRows ? end - info[0] : kTileRows;
      info[2] = s;
      return;
    }
    first += tiles;
    begin = end;
  }
}

// Weight vector width along a's rows: float4 at most (V = 8 for 16-bit storage is two of them).
template <int V>
constexpr int weight_vec() {
  return V < 4 ? V : 4;
}

// s[i][k] = sum_c src[i * len + c] * W(k, c) for i < nrows, k < rank, where W(k, c) =
// w[k * len + c] (kAlongLen: a, [rank, len]) or w[c * rank + k] (b, [len, rank]; w4: rank % 4 == 0
// and w 16-byte aligned, so four k come in one load). Thread-strided partials in c order, a warp
// butterfly, the warps in order. Ends with a barrier; nrows is uniform over the block.
template <class T, int V, bool kAlongLen>
__device__ __forceinline__ void shrink(const T *src, int64_t len, const float *w, int rank, bool w4,
                                       int nrows, float (*s)[kMaxRank],
                                       float (*partial)[kTileRows * kGroup]) {
  constexpr int WV = weight_vec<V>();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int k0 = 0; k0 < rank; k0 += kGroup) {
    float acc[kTileRows][kGroup];
#pragma unroll
    for (int i = 0; i < kTileRows; ++i)
#pragma unroll
      for (int g = 0; g < kGroup; ++g) acc[i][g] = 0.f;
    for (int64_t c = int64_t(threadIdx.x) * V; c < len; c += int64_t(kThreads) * V) {
      float wv[kGroup][V];
      if (kAlongLen) {
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          if (k0 + g < rank) {
#pragma unroll
            for (int e0 = 0; e0 < V; e0 += WV) {
              Vec<float, WV> f;
              f.load(w + int64_t(k0 + g) * len + c + e0);
#pragma unroll
              for (int e = 0; e < WV; ++e) wv[g][e0 + e] = f.v[e];
            }
          } else {
#pragma unroll
            for (int e = 0; e < V; ++e) wv[g][e] = 0.f;
          }
        }
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const float *row = w + (c + e) * rank + k0;
          if (w4) {
            Vec<float, 4> f;
            f.load(row);
#pragma unroll
            for (int g = 0; g < kGroup; ++g) wv[g][e] = f.v[g];
          } else {
#pragma unroll
            for (int g = 0; g < kGroup; ++g) wv[g][e] = k0 + g < rank ? row[g] : 0.f;
          }
        }
      }
#pragma unroll
      for (int i = 0; i < kTileRows; ++i) {
        if (i < nrows) {
          Vec<T, V> xv;
          xv.load(src + i * len + c);
#pragma unroll
          for (int e = 0; e < V; ++e) {
            const float xe = to_f32(xv.v[e]);
#pragma unroll
            for (int g = 0; g < kGroup; ++g) acc[i][g] += xe * wv[g][e];
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kTileRows; ++i) {
      if (i < nrows) {
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          const float v = warp_sum(acc[i][g]);
          if (lane == 0) partial[warp][i * kGroup + g] = v;
        }
      }
    }
    __syncthreads();
    if (threadIdx.x < kTileRows * kGroup) {
      const int i = threadIdx.x / kGroup, g = threadIdx.x % kGroup;
      if (i < nrows && k0 + g < rank) {
        float t = 0.f;
#pragma unroll
        for (int q = 0; q < kWarps; ++q) t += partial[q][threadIdx.x];
        s[i][k0 + g] = t;
      }
    }
    __syncthreads();
  }
}

// dst[i * len + j] = round(dst + round(scale * sum_k W(j, k) s[i][k])) for i < nrows, j in
// [j0, j1), where W(j, k) = w[k * len + j] (kAlongLen: a) or w[j * rank + k] (b; w4 as in shrink).
// k runs in order either way, so w4 changes loads, not results.
template <class T, int V, bool kAlongLen>
__device__ __forceinline__ void expand(const float (*s)[kMaxRank], int nrows, int rank,
                                       const float *w, bool w4, int64_t len, int64_t j0, int64_t j1,
                                       float scale, T *dst) {
  constexpr int WV = weight_vec<V>();
  for (int64_t j = j0 + int64_t(threadIdx.x) * V; j < j1; j += int64_t(kThreads) * V) {
    float acc[kTileRows][V];
#pragma unroll
    for (int i = 0; i < kTileRows; ++i)
#pragma unroll
      for (int e = 0; e < V; ++e) acc[i][e] = 0.f;
    if (kAlongLen || !w4) {
      for (int k = 0; k < rank; ++k) {
        float wv[V];
        if (kAlongLen) {
#pragma unroll
          for (int e0 = 0; e0 < V; e0 += WV) {
            Vec<float, WV> f;
            f.load(w + int64_t(k) * len + j + e0);
#pragma unroll
            for (int e = 0; e < WV; ++e) wv[e0 + e] = f.v[e];
          }
        } else {
#pragma unroll
          for (int e = 0; e < V; ++e) wv[e] = w[(j + e) * rank + k];
        }
#pragma unroll
        for (int i = 0; i < kTileRows; ++i) {
          if (i < nrows) {
            const float si = s[i][k];
#pragma unroll
            for (int e = 0; e < V; ++e) acc[i][e] += wv[e] * si;
          }
        }
      }
    } else {
      // Four k per step: the V rows' float4 loads first, then k by k over the rows (the same
      // order of FMAs as the scalar path). Not unrolled: hoisting the next step's loads took
      // V = 8 to 230 registers (one block per SM).
#pragma unroll 1
      for (int k = 0; k < rank; k += 4) {
        Vec<float, 4> f[V];
#pragma unroll
        for (int e = 0; e < V; ++e) f[e].load(w + (j + e) * rank + k);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
#pragma unroll
          for (int i = 0; i < kTileRows; ++i) {
            if (i < nrows) {
              const float si = s[i][k + q];
#pragma unroll
              for (int e = 0; e < V; ++e) acc[i][e] += f[e].v[q] * si;
            }
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kTileRows; ++i) {
      if (i < nrows) {
        Vec<T, V> yv;
        yv.load(dst + i * len + j);
#pragma unroll
        for (int e = 0; e < V; ++e)
          yv.v[e] = from_f32<T>(to_f32(yv.v[e]) + to_f32(from_f32<T>(scale * acc[i][e])));
        yv.store(dst + i * len + j);
      }
    }
  }
}

// Forward (kInputGrad = false): y += round(scale * b (a x)); dx (true): dx += round(scale * (dy b)
// a). Block x: a row tile; block y: a chunk of `chunk` output columns.
template <class T, int V, bool kInputGrad>
__global__ void __launch_bounds__(kThreads)
    lora_rows_kernel(const T *src, const float *a, const float *b, const int64_t *offsets,
                     int segments, int64_t rows, int64_t in, int64_t out, int rank, float scale,
                     int64_t chunk, bool b4, T *dst) {
  __shared__ int64_t info[3];
  __shared__ float s[kTileRows][kMaxRank];
  __shared__ float partial[kWarps][kTileRows * kGroup];
  if (threadIdx.x == 0) find_tile(offsets, segments, rows, blockIdx.x, info);
  __syncthreads();
  const int nrows = int(info[1]);
  if (nrows == 0) return;  // a surplus block: the whole block leaves together
  const int64_t row0 = info[0], seg = info[2];
  const float *as = a + seg * rank * in, *bs = b + seg * out * rank;
  const int64_t len_src = kInputGrad ? out : in, len_dst = kInputGrad ? in : out;
  const int64_t j0 = int64_t(blockIdx.y) * chunk;
  const int64_t j1 = j0 + chunk < len_dst ? j0 + chunk : len_dst;
  if (kInputGrad) {
    shrink<T, V, false>(src + row0 * len_src, len_src, bs, rank, b4, nrows, s, partial);
    expand<T, V, true>(s, nrows, rank, as, b4, len_dst, j0, j1, scale, dst + row0 * len_dst);
  } else {
    shrink<T, V, true>(src + row0 * len_src, len_src, as, rank, b4, nrows, s, partial);
    expand<T, V, false>(s, nrows, rank, bs, b4, len_dst, j0, j1, scale, dst + row0 * len_dst);
  }
}

// da[s][k, c] += scale * sum_t G[t, k] x[t, c] (blocks x < tiles_in, 256 columns c each) and
// db[s][j, k] += scale * sum_t dy[t, j] U[t, k] (the other blocks, 256 rows j each); block y: the
// segment. KMAX >= rank bounds the per-thread accumulators.
template <class T, int V, int KMAX>
__global__ void __launch_bounds__(kThreads)
    lora_weight_grad_kernel(const T *x, const T *dy, const float *a, const float *b,
                            const int64_t *offsets, int64_t rows, int64_t in, int64_t out, int rank,
                            float scale, bool b4, int64_t tiles_in, float *da, float *db) {
  __shared__ int64_t bounds[2];
  __shared__ float s[kTileRows][kMaxRank];
  __shared__ float partial[kWarps][kTileRows * kGroup];
  const int seg = int(blockIdx.y);
  if (threadIdx.x == 0) segment_rows(offsets, seg, rows, &bounds[0], &bounds[1]);
  __syncthreads();
  const int64_t begin = bounds[0], end = bounds[1];
  if (begin == end) return;
  const bool grad_a = int64_t(blockIdx.x) < tiles_in;
  const int64_t col =
      (grad_a ? int64_t(blockIdx.x) : int64_t(blockIdx.x) - tiles_in) * kThreads + threadIdx.x;
  const float *as = a + int64_t(seg) * rank * in, *bs = b + int64_t(seg) * out * rank;
  float acc[KMAX];
#pragma unroll
  for (int k = 0; k < KMAX; ++k) acc[k] = 0.f;
  for (int64_t t0 = begin; t0 < end; t0 += kTileRows) {
    const int nrows = int(end - t0 < kTileRows ? end - t0 : kTileRows);
    if (grad_a)
      shrink<T, V, false>(dy + t0 * out, out, bs, rank, b4, nrows, s, partial);  // G
    else
      shrink<T, V, true>(x + t0 * in, in, as, rank, b4, nrows, s, partial);  // U
    const T *v = grad_a ? x + t0 * in : dy + t0 * out;
    const int64_t ld = grad_a ? in : out;
    if (col < ld) {
      for (int i = 0; i < nrows; ++i) {
        const float vi = to_f32(v[i * ld + col]);
#pragma unroll
        for (int k = 0; k < KMAX; ++k)
          if (k < rank) acc[k] += s[i][k] * vi;
      }
    }
  }
  if (grad_a && col < in) {
    float *das = da + int64_t(seg) * rank * in;
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
      if (k < rank) das[k * in + col] += scale * acc[k];
  } else if (!grad_a && col < out) {
    float *dbs = db + int64_t(seg) * out * rank;
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
      if (k < rank) dbs[col * rank + k] += scale * acc[k];
  }
}

// The vector width: pick_vec's over the activations and both lengths, narrowed until the float
// loads of a (min(V, 4) floats) are aligned too.
template <class T>
int lora_vec(int64_t in, int64_t out, const float *a, std::initializer_list<const void *> ptrs) {
  constexpr int kMax = 16 / int(sizeof(T));
  int v = pick_vec<T>({in, out}, ptrs);
  while (v > 1 && !aligned_to(a, int64_t(v < 4 ? v : 4) * 4)) v = v == kMax ? kMax / 2 : 1;
  return v;
}

// Output columns per row-kernel block: a multiple of kThreads * V, at least a quarter of the
// shrunk length (so the redone shrink stays within 4x the expand's work).
int64_t column_chunk(int64_t shrunk, int v) {
  const int64_t step = int64_t(kThreads) * v;
  const int64_t quarter = (shrunk + 3) / 4;
  return quarter <= step ? step : (quarter + step - 1) / step * step;
}

template <class T>
relat_status launch_rows(const char *op, bool input_grad, const void *src, const float *a,
                         const float *b, const int64_t *offsets, int64_t segments, int64_t rows,
                         int64_t in, int64_t out, int64_t rank, float scale, void *dst, int v,
                         relat_stream stream) {
  const int64_t shrunk = input_grad ? out : in, len = input_grad ? in : out;
  const int64_t chunk = column_chunk(shrunk, v), chunks = (len + chunk - 1) / chunk;
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows + segments;
  if (chunks > 65535 || tiles > 0x7fffffff)
    return fail(RELAT_ERR_UNSUPPORTED, "%s: rows=%lld, width %lld too large", op, (long long)rows,
                (long long)len);
  const bool b4 = rank % 4 == 0 && aligned_to(b, 16);
  const dim3 grid{unsigned(tiles), unsigned(chunks)};
  return with_vec<T>(v, [&](auto vc) {
    constexpr int V = decltype(vc)::value;
    if (input_grad)
      RELAT_LAUNCH(grid, kThreads, 0, stream, lora_rows_kernel<T, V, true>)
      (static_cast<const T *>(src), a, b, offsets, int(segments), rows, in, out, int(rank), scale,
       chunk, b4, static_cast<T *>(dst));
    else
      RELAT_LAUNCH(grid, kThreads, 0, stream, lora_rows_kernel<T, V, false>)
      (static_cast<const T *>(src), a, b, offsets, int(segments), rows, in, out, int(rank), scale,
       chunk, b4, static_cast<T *>(dst));
    return check_launch(op);
  });
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_lora_segmented_forward(const void *x, const float *a,
                                                          const float *b, const int64_t *offsets,
                                                          int64_t segments, int64_t rows,
                                                          int64_t in, int64_t out, int64_t rank,
                                                          float scale, void *y, relat_dtype dtype,
                                                          relat_stream stream) {
  const char *op = "lora_segmented_forward";
  RELAT_ON_STREAM_DEVICE(op, stream);
  if (auto m = relat::validate::lora_segmented(op, false, x, nullptr, a, b, offsets, segments, rows,
                                               in, out, rank, scale, y, nullptr, nullptr, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int v = lora_vec<T>(in, out, a, {x, y});
    return launch_rows<T>(op, false, x, a, b, offsets, segments, rows, in, out, rank, scale, y, v,
                          stream);
  });
}

extern "C" relat_status relat_cuda_lora_segmented_backward(
    const void *x, const void *dy, const float *a, const float *b, const int64_t *offsets,
    int64_t segments, int64_t rows, int64_t in, int64_t out, int64_t rank, float scale, float *da,
    float *db, void *dx, relat_dtype dtype, relat_stream stream) {
  const char *op = "lora_segmented_backward";
  RELAT_ON_STREAM_DEVICE(op, stream);
  if (auto m = relat::validate::lora_segmented(op, true, x, dy, a, b, offsets, segments, rows, in,
                                               out, rank, scale, nullptr, da, db, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int v = lora_vec<T>(in, out, a, {x, dy, dx});
    const int64_t tiles_in = (in + kThreads - 1) / kThreads;
    const int64_t tiles = tiles_in + (out + kThreads - 1) / kThreads;
    const bool b4 = rank % 4 == 0 && aligned_to(b, 16);
    const dim3 grid{unsigned(tiles), unsigned(segments)};
    relat_status st = with_vec<T>(v, [&](auto vc) {
      constexpr int V = decltype(vc)::value;
      if (rank <= 16)
        RELAT_LAUNCH(grid, kThreads, 0, stream, lora_weight_grad_kernel<T, V, 16>)
        (static_cast<const T *>(x), static_cast<const T *>(dy), a, b, offsets, rows, in, out,
         int(rank), scale, b4, tiles_in, da, db);
      else
        RELAT_LAUNCH(grid, kThreads, 0, stream, lora_weight_grad_kernel<T, V, kMaxRank>)
        (static_cast<const T *>(x), static_cast<const T *>(dy), a, b, offsets, rows, in, out,
         int(rank), scale, b4, tiles_in, da, db);
      return check_launch(op);
    });
    if (st != RELAT_OK || dx == nullptr) return st;
    return launch_rows<T>(op, true, dy, a, b, offsets, segments, rows, in, out, rank, scale, dx, v,
                          stream);
  });
}
