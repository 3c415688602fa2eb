// RMSNorm on CUDA. CPU twin: native/src/rmsnorm.cpp.
// One block per row: the sum of squares (fp32) is reduced in registers and shared memory, then the
// same threads scale their elements by rstd * weight, so the row never makes a round trip through
// global memory between the two passes beyond the L1/L2-resident re-read.
// Floor: bytes = rows*cols*2*sizeof(T) (read x, write y) + cols*sizeof(T) (weight, cached)
//        + rows*4 (rstd); FLOPs ~ 4*rows*cols, so the kernel is bandwidth-bound.
#include "../native/src/validate.h"
#include "cuda_common.cuh"

namespace relat::cuda {
namespace {

template <class T>
__global__ void rmsnorm_forward_kernel(const T *x, const T *__restrict__ w,
                                       T *y, float *__restrict__ rstd_out, int64_t cols,
                                       float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T *xr = x + row * cols;
  T *yr = y + row * cols;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = to_f32(xr[c]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float rstd = rsqrtf(ss / float(cols) + eps);
  if (rstd_out && threadIdx.x == 0) rstd_out[row] = rstd;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = from_f32<T>(to_f32(xr[c]) * rstd * to_f32(__ldg(w + c)));
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_rmsnorm_forward(const void *x, const void *weight, void *y,
                                                   float *rstd, int64_t rows, int64_t cols,
                                                   float eps, relat_dtype dtype,
                                                   relat_stream stream) {
  if (auto m = relat::validate::rmsnorm_forward(x, weight, y, rows, cols, eps, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "rmsnorm_forward: more than 2^31-1 rows");
  return dispatch_dtype(dtype, "rmsnorm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RELAT_LAUNCH(unsigned(rows), row_block_size(cols), 0, stream, rmsnorm_forward_kernel<T>)(
        static_cast<const T *>(x), static_cast<const T *>(weight), static_cast<T *>(y), rstd, cols,
        eps);
    return check_launch("rmsnorm_forward");
  });
}
