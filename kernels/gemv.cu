// Few-row linear (GEMV), forward y = x w^T and backward y = dy w, on CUDA. CPU twin:
// native/src/gemv.cpp.
//
// Single-token passes read every weight once per row produced; at rows <= 8 a tensor-core GEMM
// tile is mostly padding, so these kernels are plain streams over w with fp32 accumulation and
// one rounding per output.
// forward: one warp per row of w, 16-byte loads along it (V elements per lane), the rows' sums in
// registers, a warp reduction per x row; 8 warps per block, so n = 1024 already gives 128 blocks.
// backward: a block owns 32 columns of w and its 8 warps split w's rows; each lane sums its
// column over the warp's rows (a coalesced 128-byte read of each row segment), then the warps'
// partial sums meet in shared memory. k = 1024 gives 32 blocks, k = 4096 128.
// Floors (S = sizeof(storage)): bytes n*k*S + rows*(n + k)*S, FLOPs 2*rows*n*k; bandwidth-bound.
// At 3.35 TB/s, Qwen3-8B's q|k|v projection (6144 x 4096, bf16, 50 MB) takes >= 15 us.
#include "cuda_common.cuh"
#include "validate.h"
#include "vector_io.cuh"

namespace relat::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;

template <class T, int V>
__global__ void __launch_bounds__(kThreads)
    gemv_forward_kernel(const T *x, const T *w, T *y, int rows, int64_t n, int64_t k) {
  const int lane = threadIdx.x & 31;
  const int64_t j = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (j >= n) return;  // whole warps leave together: j is uniform across a warp
  const T *wj = w + j * k;
  float acc[RELAT_GEMV_MAX_ROWS];
#pragma unroll
  for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r) acc[r] = 0.f;
  for (int64_t c = int64_t(lane) * V; c < k; c += 32 * V) {
    Vec<T, V> wv;
    wv.load(wj + c);
#pragma unroll
    for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r) {
      if (r < rows) {
        Vec<T, V> xv;
        xv.load(x + r * k + c);
#pragma unroll
        for (int e = 0; e < V; ++e) acc[r] += to_f32(xv.v[e]) * to_f32(wv.v[e]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r) {
    if (r < rows) {
      const float s = warp_sum(acc[r]);
      if (lane == 0) y[r * n + j] = from_f32<T>(s);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    gemv_backward_kernel(const T *x, const T *w, T *y, int rows, int64_t n, int64_t k) {
  __shared__ float partial[kWarps][RELAT_GEMV_MAX_ROWS][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t c = int64_t(blockIdx.x) * 32 + lane;
  float acc[RELAT_GEMV_MAX_ROWS];
#pragma unroll
  for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r) acc[r] = 0.f;
  if (c < k) {
    for (int64_t j = warp; j < n; j += kWarps) {
      const float wv = to_f32(w[j * k + c]);
#pragma unroll
      for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r)
        if (r < rows) acc[r] += to_f32(x[r * n + j]) * wv;
    }
  }
#pragma unroll
  for (int r = 0; r < RELAT_GEMV_MAX_ROWS; ++r) partial[warp][r][lane] = acc[r];
  __syncthreads();
  // warp r' sums row r' over the warps (rows <= 8 = kWarps)
  if (warp < rows && c < k) {
    float s = 0.f;
#pragma unroll
    for (int q = 0; q < kWarps; ++q) s += partial[q][warp][lane];
    y[int64_t(warp) * k + c] = from_f32<T>(s);
  }
}

static_assert(RELAT_GEMV_MAX_ROWS <= kWarps, "the backward's final sum takes one warp per row");

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_gemv_forward(const void *x, const void *w, void *y, int64_t rows,
                                                int64_t n, int64_t k, relat_dtype dtype,
                                                relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("gemv_forward", stream);
  if (auto m = relat::validate::gemv("gemv_forward", x, w, y, rows, n, k, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  const int64_t blocks = (n + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff)
    return fail(RELAT_ERR_UNSUPPORTED, "gemv_forward: n=%lld too large", (long long)n);
  return dispatch_dtype(dtype, "gemv_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int v = pick_vec<T>({k}, {x, w});
    return with_vec<T>(v, [&](auto vc) {
      constexpr int V = decltype(vc)::value;
      RELAT_LAUNCH(unsigned(blocks), kThreads, 0, stream, gemv_forward_kernel<T, V>)(
          static_cast<const T *>(x), static_cast<const T *>(w), static_cast<T *>(y), int(rows), n,
          k);
      return check_launch("gemv_forward");
    });
  });
}

extern "C" relat_status relat_cuda_gemv_backward(const void *x, const void *w, void *y,
                                                 int64_t rows, int64_t n, int64_t k,
                                                 relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("gemv_backward", stream);
  if (auto m = relat::validate::gemv("gemv_backward", x, w, y, rows, n, k, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  const int64_t blocks = (k + 31) / 32;
  if (blocks > 0x7fffffff)
    return fail(RELAT_ERR_UNSUPPORTED, "gemv_backward: k=%lld too large", (long long)k);
  return dispatch_dtype(dtype, "gemv_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RELAT_LAUNCH(unsigned(blocks), kThreads, 0, stream, gemv_backward_kernel<T>)(
        static_cast<const T *>(x), static_cast<const T *>(w), static_cast<T *>(y), int(rows), n, k);
    return check_launch("gemv_backward");
  });
}
