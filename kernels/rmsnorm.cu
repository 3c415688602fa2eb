// RMSNorm, residual-add + RMSNorm, and their backwards on CUDA. CPU twin: native/src/rmsnorm.cpp.
//
// What is fused:
//  - forward: one row per block (cols > 1024) or one row per warp (cols <= 1024: QK-norm heads of
//    128, hidden 1024), so the sum of squares is reduced in registers / shared memory and the same
//    threads then scale their own elements; the second read of the row hits L1/L2. With the
//    residual, s = x + r is rounded to the storage type, written and squared in the first pass
//    (the norm is taken of the rounded s, the value the backward will read back).
//  - backward: the row dot sum(dy * w * x) and the dx pass in one kernel; the residual form adds
//    ds_next in the same pass (ds = dx + ds_next), so the residual-stream gradient costs one read.
//  - dweight (optional): each block accumulates dy * x * rstd over the rows it owns into shared
//    memory (per warp in warp-per-row mode; a block-private row of the workspace when a row of fp32
//    would not fit in 40 KiB), writes one fp32 partial row to the workspace, and a second small
//    kernel sums the partials per column in a fixed order. Chosen over fp32 atomics into one
//    accumulator: deterministic run to run (the same question gives the same adapter), no
//    contention on cols addresses, no need to zero an accumulator first; the cost is
//    2 * G * cols * 4 bytes of workspace traffic with G <= 256 partials, small against the
//    3 * rows * cols * S of the backward itself once rows >> G.
// Accesses are vectorised (16 or 8 bytes per thread; scalar when alignment or cols forbid).
// Floors (S = sizeof(storage)):
//   forward  bytes rows*cols*2S (+ rows*cols*2S with residual: read r, write s) + cols*S + rows*4
//   backward bytes rows*cols*3S (+ rows*cols*S for ds_next) + cols*S + rows*4
//            (+ 2*G*cols*4 + cols*4 for dweight)
// FLOPs ~4 / ~8 per element: bandwidth-bound (H100: ~3.3 TB/s against ~60 TFLOP/s fp32).
#include "cuda_common.cuh"
#include "validate.h"
#include "vector_io.cuh"

namespace relat::cuda {
namespace {

// cols <= kWarpRowMaxCols: one warp per row, kWarpRowsPerBlock rows per block.
constexpr int64_t kWarpRowMaxCols = 1024;
constexpr int kWarpRowsPerBlock = 4;
// dweight partials: each block owns at least kRowsPerPartial rows (warp mode: per warp) and there
// are at most kMaxPartials of them. A fixed function of (rows, cols): the workspace query and the
// launch agree, and results do not depend on the device.
constexpr int64_t kRowsPerPartial = 4;
constexpr int64_t kMaxPartials = 256;
constexpr int64_t kSmemAccBytes = 40 * 1024;  // + static scratch, under the 48 KiB default

bool warp_rows(int64_t cols) { return cols <= kWarpRowMaxCols; }

int64_t weight_grad_partials(int64_t rows, int64_t cols) {
  const int64_t per_block = kRowsPerPartial * (warp_rows(cols) ? kWarpRowsPerBlock : 1);
  int64_t g = (rows + per_block - 1) / per_block;
  if (g < 1) g = 1;
  return g < kMaxPartials ? g : kMaxPartials;
}

// Threads per block and blocks for a row-wise launch over `rows` rows of `nvec` vectors.
struct RowLaunch {
  bool warp;
  int threads;
  int64_t blocks;
};

RowLaunch row_launch(int64_t rows, int64_t cols, int64_t nvec) {
  if (warp_rows(cols))
    return {true, 32 * kWarpRowsPerBlock, (rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock};
  return {false, row_block_size(nvec, 4), rows};
}

template <class T, int V, bool kResidual>
__global__ void __launch_bounds__(1024)
    rmsnorm_forward_kernel(const T *x, const T *r, T *s, const T *__restrict__ w, T *y,
                           float *__restrict__ rstd_out, int64_t rows, int64_t cols, float eps,
                           bool warp) {
  __shared__ float scratch[32];
  const int lane = warp ? int(threadIdx.x & 31) : int(threadIdx.x);
  const int group = warp ? 32 : int(blockDim.x);
  const int64_t row =
      warp ? int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5) : int64_t(blockIdx.x);
  if (warp && row >= rows) return;  // the whole warp: warp mode has no block-wide barrier
  const int64_t nvec = cols / V, off = row * cols;
  float ss = 0.f;
  for (int64_t i = lane; i < nvec; i += group) {
    Vec<T, V> xv;
    xv.load(x + off + i * V);
    if constexpr (kResidual) {
      Vec<T, V> rv;
      rv.load(r + off + i * V);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        xv.v[k] = from_f32<T>(to_f32(xv.v[k]) + to_f32(rv.v[k]));
        const float f = to_f32(xv.v[k]);
        ss += f * f;
      }
      xv.store(s + off + i * V);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float f = to_f32(xv.v[k]);
        ss += f * f;
      }
    }
  }
  ss = warp ? warp_sum(ss) : block_sum(ss, scratch);
  const float rstd = rsqrtf(ss / float(cols) + eps);
  if (rstd_out && lane == 0) rstd_out[row] = rstd;
  const T *src = kResidual ? s : x;  // s was written by this same thread: program order holds
  for (int64_t i = lane; i < nvec; i += group) {
    Vec<T, V> xv, wv, yv;
    xv.load(src + off + i * V);
    wv.load(w + i * V);
#pragma unroll
    for (int k = 0; k < V; ++k) yv.v[k] = from_f32<T>(to_f32(xv.v[k]) * rstd * to_f32(wv.v[k]));
    yv.store(y + off + i * V);
  }
}

// partials == nullptr: dx only, one row per block / warp. Otherwise the grid has G blocks that
// stride over the rows and each writes partials[blockIdx.x, :]. acc_in_smem: the accumulator
// lives in dynamic shared memory, laid out [group][k][vector] so consecutive lanes hit
// consecutive banks; else in the block's own partial row (natural layout).
template <class T, int V, bool kResidual>
__global__ void __launch_bounds__(1024)
    rmsnorm_backward_kernel(const T *dy, const T *ds_next, const T *x, const T *__restrict__ w,
                            const float *__restrict__ rstd, T *dx, float *partials, int64_t rows,
                            int64_t cols, bool warp, bool acc_in_smem) {
  extern __shared__ float acc_smem[];
  __shared__ float scratch[32];
  const int lane = warp ? int(threadIdx.x & 31) : int(threadIdx.x);
  const int group_size = warp ? 32 : int(blockDim.x);
  const int groups = warp ? int(blockDim.x >> 5) : 1;
  const int group = warp ? int(threadIdx.x >> 5) : 0;
  const int64_t nvec = cols / V;
  float *acc = nullptr;
  if (partials) {
    acc = acc_in_smem ? acc_smem + int64_t(group) * cols : partials + int64_t(blockIdx.x) * cols;
    for (int64_t i = lane; i < nvec; i += group_size)
#pragma unroll
      for (int k = 0; k < V; ++k) acc[acc_in_smem ? k * nvec + i : i * V + k] = 0.f;
  }
  for (int64_t row = int64_t(blockIdx.x) * groups + group; row < rows;
       row += int64_t(gridDim.x) * groups) {
    const float rs = rstd[row];
    const int64_t off = row * cols;
    float dot = 0.f;
    for (int64_t i = lane; i < nvec; i += group_size) {
      Vec<T, V> gv, xv, wv;
      gv.load(dy + off + i * V);
      xv.load(x + off + i * V);
      wv.load(w + i * V);
#pragma unroll
      for (int k = 0; k < V; ++k) dot += to_f32(gv.v[k]) * to_f32(wv.v[k]) * to_f32(xv.v[k]);
    }
    dot = warp ? warp_sum(dot) : block_sum(dot, scratch);  // block mode: row is block-uniform
    const float kx = dot * rs * rs * rs / float(cols);
    for (int64_t i = lane; i < nvec; i += group_size) {
      Vec<T, V> gv, xv, wv, nv, ov;
      gv.load(dy + off + i * V);
      xv.load(x + off + i * V);
      wv.load(w + i * V);
      if constexpr (kResidual) nv.load(ds_next + off + i * V);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float g = to_f32(gv.v[k]), xf = to_f32(xv.v[k]);
        float v = rs * to_f32(wv.v[k]) * g - kx * xf;
        if constexpr (kResidual) v += to_f32(nv.v[k]);
        ov.v[k] = from_f32<T>(v);
        if (acc) acc[acc_in_smem ? k * nvec + i : i * V + k] += g * xf * rs;
      }
      ov.store(dx + off + i * V);
    }
  }
  if (!partials || !acc_in_smem) return;  // a global accumulator is already the partial row
  float *out = partials + int64_t(blockIdx.x) * cols;
  if (warp) {
    __syncthreads();  // every warp's accumulator is complete
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const int64_t idx = (c % V) * nvec + c / V;
      float t = 0.f;
      for (int g = 0; g < groups; ++g) t += acc_smem[int64_t(g) * cols + idx];
      out[c] = t;
    }
  } else {
    for (int64_t i = lane; i < nvec; i += group_size)  // this thread's own columns: no barrier
#pragma unroll
      for (int k = 0; k < V; ++k) out[i * V + k] = acc[k * nvec + i];
  }
}

// dweight[c] = sum_p partials[p, c], p in a fixed order. Block (32, 8): 32 columns, 8 strided
// partial sums per column combined through shared memory.
__global__ void sum_partials_kernel(const float *__restrict__ partials, int64_t parts, int64_t cols,
                                    float *__restrict__ dweight) {
  __shared__ float tile[8][33];
  const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float t = 0.f;
  if (c < cols)
    for (int64_t p = threadIdx.y; p < parts; p += 8) t += partials[p * cols + c];
  tile[threadIdx.y][threadIdx.x] = t;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) sum += tile[j][threadIdx.x];
    dweight[c] = sum;
  }
}

__global__ void zero_kernel(float *p, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    p[i] = 0.f;
}

template <bool kResidual>
relat_status forward_launch(const char *op, const void *x, const void *r, void *s,
                            const void *weight, void *y, float *rstd, int64_t rows, int64_t cols,
                            float eps, relat_dtype dtype, relat_stream stream) {
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 rows", op);
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int v = pick_vec<T>({cols}, {x, r, s, weight, y}, cols, warp_rows(cols) ? 32 : 0);
    return with_vec<T>(v, [&](auto vc) {
      constexpr int V = decltype(vc)::value;
      const RowLaunch L = row_launch(rows, cols, cols / V);
      RELAT_LAUNCH(unsigned(L.blocks), L.threads, 0, stream, rmsnorm_forward_kernel<T, V, kResidual>)(
          static_cast<const T *>(x), static_cast<const T *>(r), static_cast<T *>(s),
          static_cast<const T *>(weight), static_cast<T *>(y), rstd, rows, cols, eps, L.warp);
      return check_launch(op);
    });
  });
}

template <bool kResidual>
relat_status backward_launch(const char *op, const void *dy, const void *ds_next, const void *x,
                             const void *weight, const float *rstd, void *dx, float *dweight,
                             void *workspace, int64_t workspace_bytes, int64_t rows, int64_t cols,
                             relat_dtype dtype, relat_stream stream) {
  const int64_t needed =
      rows >= 0 && cols > 0 ? weight_grad_partials(rows, cols) * cols * int64_t(sizeof(float)) : 0;
  if (auto m = relat::validate::rmsnorm_backward(op, dy, ds_next, kResidual, x, weight, rstd, dx,
                                                 dweight, workspace, workspace_bytes, needed, rows,
                                                 cols, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 rows", op);
  if (rows == 0) {
    if (!dweight) return RELAT_OK;
    RELAT_LAUNCH(unsigned((cols + 255) / 256), 256, 0, stream, zero_kernel)(dweight, cols);
    return check_launch(op);
  }
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int v = pick_vec<T>({cols}, {dy, ds_next, x, weight, dx}, cols, warp_rows(cols) ? 32 : 0);
    return with_vec<T>(v, [&](auto vc) {
      constexpr int V = decltype(vc)::value;
      RowLaunch L = row_launch(rows, cols, cols / V);
      float *partials = dweight ? static_cast<float *>(workspace) : nullptr;
      const int64_t parts = weight_grad_partials(rows, cols);
      size_t smem = 0;
      bool acc_in_smem = false;
      if (dweight) {
        L.blocks = parts;
        const int64_t acc_bytes = (L.warp ? kWarpRowsPerBlock : 1) * cols * int64_t(sizeof(float));
        acc_in_smem = acc_bytes <= kSmemAccBytes;
        smem = acc_in_smem ? size_t(acc_bytes) : 0;
      }
      RELAT_LAUNCH(unsigned(L.blocks), L.threads, smem, stream, rmsnorm_backward_kernel<T, V, kResidual>)(
          static_cast<const T *>(dy), static_cast<const T *>(ds_next), static_cast<const T *>(x),
          static_cast<const T *>(weight), rstd, static_cast<T *>(dx), partials, rows, cols, L.warp,
          acc_in_smem);
      if (relat_status st = check_launch(op); st != RELAT_OK || !dweight) return st;
      RELAT_LAUNCH(unsigned((cols + 31) / 32), dim3(32, 8), 0, stream, sum_partials_kernel)(
          partials, parts, cols, dweight);
      return check_launch(op);
    });
  });
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_rmsnorm_forward(const void *x, const void *weight, void *y,
                                                   float *rstd, int64_t rows, int64_t cols,
                                                   float eps, relat_dtype dtype,
                                                   relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("rmsnorm_forward", stream);
  if (auto m = relat::validate::rmsnorm_forward(x, weight, y, rows, cols, eps, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return forward_launch<false>("rmsnorm_forward", x, nullptr, nullptr, weight, y, rstd, rows, cols,
                               eps, dtype, stream);
}

extern "C" relat_status relat_cuda_add_rmsnorm_forward(const void *x, const void *r, void *s,
                                                       const void *weight, void *y, float *rstd,
                                                       int64_t rows, int64_t cols, float eps,
                                                       relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("add_rmsnorm_forward", stream);
  if (auto m = relat::validate::add_rmsnorm_forward(x, r, s, weight, y, rows, cols, eps, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return forward_launch<true>("add_rmsnorm_forward", x, r, s, weight, y, rstd, rows, cols, eps,
                              dtype, stream);
}

extern "C" relat_status relat_cuda_rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols,
                                                                    int64_t *bytes) {
  if (auto m = relat::validate::rmsnorm_backward_workspace_bytes(rows, cols, bytes); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = weight_grad_partials(rows, cols) * cols * int64_t(sizeof(float));
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_rmsnorm_backward(const void *dy, const void *x,
                                                    const void *weight, const float *rstd,
                                                    void *dx, float *dweight, void *workspace,
                                                    int64_t workspace_bytes, int64_t rows,
                                                    int64_t cols, relat_dtype dtype,
                                                    relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("rmsnorm_backward", stream);
  return backward_launch<false>("rmsnorm_backward", dy, nullptr, x, weight, rstd, dx, dweight,
                                workspace, workspace_bytes, rows, cols, dtype, stream);
}

extern "C" relat_status relat_cuda_add_rmsnorm_backward(const void *dy, const void *ds_next,
                                                        const void *s, const void *weight,
                                                        const float *rstd, void *ds,
                                                        float *dweight, void *workspace,
                                                        int64_t workspace_bytes, int64_t rows,
                                                        int64_t cols, relat_dtype dtype,
                                                        relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("add_rmsnorm_backward", stream);
  return backward_launch<true>("add_rmsnorm_backward", dy, ds_next, s, weight, rstd, ds, dweight,
                               workspace, workspace_bytes, rows, cols, dtype, stream);
}
