// RMSNorm, CPU twin of kernels/rmsnorm.cu.
// One pass to sum squares in fp32, one pass to scale: per row, x is read twice (the second read
// hits cache for rows up to a few hundred KiB), y written once. Rows are spread over threads.
#include "cpu_common.h"
#include "validate.h"

namespace relat::cpu {
namespace {

template <class T>
RELAT_VECTOR_CLONES void rmsnorm_row(const T *x, const T *w, T *y, float *rstd_out, int64_t cols,
                                     float eps) {
  float ss = 0.f;
#pragma omp simd reduction(+ : ss)
  for (int64_t c = 0; c < cols; ++c) {
    float v = to_f32(x[c]);
    ss += v * v;
  }
  const float rstd = 1.f / std::sqrt(ss / float(cols) + eps);
  if (rstd_out) *rstd_out = rstd;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] = from_f32<T>(to_f32(x[c]) * rstd * to_f32(w[c]));
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_rmsnorm_forward(const void *x, const void *weight, void *y,
                                                  float *rstd, int64_t rows, int64_t cols, float eps,
                                                  relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::rmsnorm_forward(x, weight, y, rows, cols, eps, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "rmsnorm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *ws = static_cast<const T *>(weight);
    T *ys = static_cast<T *>(y);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      rmsnorm_row(xs + r * cols, ws, ys + r * cols, rstd ? rstd + r : nullptr, cols, eps);
    return RELAT_OK;
  });
}
