// Seeded faults: copies of the RMSNorm kernel of kernels/rmsnorm.cu, each with one classic bug, to
// prove the CUDA-on-CPU tests catch it (fault_test.cpp). Compiled only under the emulation; the
// reference path (RELAT_FAULT_NONE) is the real kernel's code, so a control run must pass.
#include "../../../kernels/cuda_common.cuh"
#include "rmsnorm_faults.h"

namespace {
using namespace relat::cuda;

// (a) The barrier between writing the per-warp partial sums and warp 0 reading them is gone.
__device__ __forceinline__ float block_sum_dropped_barrier(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0.f;
    v = warp_sum(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}

// (e) block_sum (kernels/cuda_common.cuh) without its last barrier. Warps that read the total late
// can find scratch[0] already holding warp 0's partial of the next reduction on the same scratch.
__device__ __forceinline__ float block_sum_no_trailing_barrier(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0.f;
    v = warp_sum(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

// (c) The butterfly starts one step too high: xor 32 reads the lane's own value (doubling it) and
// xor 1 never happens.
__device__ __forceinline__ float warp_sum_wrong_offset(float v) {
  for (int offset = 32; offset > 1; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float block_sum_wrong_offset(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_wrong_offset(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0.f;
    v = warp_sum_wrong_offset(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}

template <relat_fault F>
__global__ void rmsnorm_fault_kernel(const float *x, const float *__restrict__ w, float *y,
                                     float *__restrict__ rstd_out, int64_t rows, int64_t cols,
                                     float eps) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float *xr = x + row * cols;
    float *yr = y + row * cols;
    // (d) threads without an element of the row leave; the others then reduce without them.
    if (F == RELAT_FAULT_EARLY_EXIT && int64_t(threadIdx.x) >= cols) return;
    // (b) `c <= cols`: the last row reads and writes one element past the end of x and y.
    const int64_t end = F == RELAT_FAULT_ROW_OVERRUN ? cols + 1 : cols;
    float ss = 0.f;
    for (int64_t c = threadIdx.x; c < end; c += blockDim.x) ss += xr[c] * xr[c];
    if (F == RELAT_FAULT_DROPPED_BARRIER)
      ss = block_sum_dropped_barrier(ss, scratch);
    else if (F == RELAT_FAULT_SHUFFLE_OFFSET)
      ss = block_sum_wrong_offset(ss, scratch);
    else if (F == RELAT_FAULT_TRAILING_BARRIER)
      ss = block_sum_no_trailing_barrier(ss, scratch);
    else
      ss = block_sum(ss, scratch);
    const float rstd = rsqrtf(ss / float(cols) + eps);
    if (rstd_out && threadIdx.x == 0) rstd_out[row] = rstd;
    for (int64_t c = threadIdx.x; c < end; c += blockDim.x) yr[c] = xr[c] * rstd * __ldg(w + c);
  }
}

template <relat_fault F> relat_status run(const float *x, const float *w, float *y, float *rstd,
                                          int64_t rows, int64_t cols, float eps,
                                          int64_t max_blocks) {
  const int64_t blocks = max_blocks > 0 && max_blocks < rows ? max_blocks : rows;
  RELAT_LAUNCH(unsigned(blocks), row_block_size(cols), 0, nullptr, rmsnorm_fault_kernel<F>)(
      x, w, y, rstd, rows, cols, eps);
  return check_launch("rmsnorm_fault");
}

// (f) Split accumulation: blocks of rows_per_block rows each add a partial column sum into dw.
template <bool kAtomic>
__global__ void split_dweight_kernel(const float *dy, const float *x, const float *rstd, float *dw,
                                     int64_t rows, int64_t cols, int64_t rows_per_block) {
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_block;
  const int64_t r1 = r0 + rows_per_block < rows ? r0 + rows_per_block : rows;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += int64_t(gridDim.x) * blockDim.x) {
    float acc = 0.f;
    for (int64_t r = r0; r < r1; ++r) acc += dy[r * cols + c] * x[r * cols + c] * rstd[r];
    if (kAtomic)
      atomicAdd(dw + c, acc);
    else
      dw[c] += acc;  // the fault: a read-modify-write that other blocks do at the same time
  }
}

}  // namespace

extern "C" relat_status relat_fault_rmsnorm_forward(relat_fault fault, const float *x,
                                                    const float *w, float *y, float *rstd,
                                                    int64_t rows, int64_t cols, float eps,
                                                    int64_t max_blocks) {
  switch (fault) {
    case RELAT_FAULT_NONE: return run<RELAT_FAULT_NONE>(x, w, y, rstd, rows, cols, eps, max_blocks);
    case RELAT_FAULT_DROPPED_BARRIER:
      return run<RELAT_FAULT_DROPPED_BARRIER>(x, w, y, rstd, rows, cols, eps, max_blocks);
    case RELAT_FAULT_ROW_OVERRUN:
      return run<RELAT_FAULT_ROW_OVERRUN>(x, w, y, rstd, rows, cols, eps, max_blocks);
    case RELAT_FAULT_SHUFFLE_OFFSET:
      return run<RELAT_FAULT_SHUFFLE_OFFSET>(x, w, y, rstd, rows, cols, eps, max_blocks);
    case RELAT_FAULT_EARLY_EXIT:
      return run<RELAT_FAULT_EARLY_EXIT>(x, w, y, rstd, rows, cols, eps, max_blocks);
    case RELAT_FAULT_TRAILING_BARRIER:
      return run<RELAT_FAULT_TRAILING_BARRIER>(x, w, y, rstd, rows, cols, eps, max_blocks);
  }
  return RELAT_ERR_INVALID_ARGUMENT;
}

extern "C" relat_status relat_fault_split_dweight(bool atomic, const float *dy, const float *x,
                                                  const float *rstd, float *dw, int64_t rows,
                                                  int64_t cols, int64_t rows_per_block) {
  const dim3 grid(unsigned((cols + 127) / 128),
                  unsigned((rows + rows_per_block - 1) / rows_per_block));
  if (atomic)
    RELAT_LAUNCH(grid, 128, 0, nullptr, split_dweight_kernel<true>)(dy, x, rstd, dw, rows, cols,
                                                                     rows_per_block);
  else
    RELAT_LAUNCH(grid, 128, 0, nullptr, split_dweight_kernel<false>)(dy, x, rstd, dw, rows, cols,
                                                                      rows_per_block);
  return check_launch("split_dweight");
}

extern "C" bool relat_fault_race_checked() { return relat_emu::race_checked(); }

extern "C" const char *relat_fault_message() {
  static thread_local std::string message;
  message = relat_emu::last_fault();
  return message.c_str();
}

extern "C" void relat_fault_reset() { cudaDeviceReset(); }
