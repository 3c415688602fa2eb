// SwiGLU, forward and backward: CPU twin of kernels/swiglu.cu.
//
// Fused: libtorch computes silu(gate) into a temporary, then multiplies by up (two passes, one
// [rows, cols] temporary, and for a fused [gate | up] projection a chunk() view); its backward runs
// silu, mul, silu_backward and mul as separate passes. Here every element is read once and every
// output written once, all in fp32, rounded once to the storage type. The fused projection layout
// costs nothing extra: gate and up are two strided views of the same rows (leading dimension).
// The exponential is the vectorised exp_f32 (cpu_math.h); rows are spread over threads.
// Floors (S = sizeof(storage), N = rows * cols):
//   forward  bytes 3*N*S (read gate, up; write out),            ~6 FLOPs + 1 exp per element
//   backward bytes 5*N*S (read dout, gate, up; write dgate, dup), ~10 FLOPs + 1 exp per element
// Bandwidth-bound on any machine where the exp is vectorised.
#include "cpu_common.h"
#include "cpu_math.h"
#include "validate.h"

namespace relat::cpu {
namespace {

template <class T>
RELAT_VECTOR_CLONES void swiglu_forward_row(const T *gate, const T *up, T *out, int64_t cols) {
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    const float g = to_f32(gate[c]);
    store_f32(out + c, g * sigmoid_f32(g) * to_f32(up[c]));
  }
}

template <class T>
RELAT_VECTOR_CLONES void swiglu_backward_row(const T *dout, const T *gate, const T *up, T *dgate,
                                             T *dup, int64_t cols) {
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    const float d = to_f32(dout[c]), g = to_f32(gate[c]), u = to_f32(up[c]);
    const float sg = sigmoid_f32(g);
    const float silu = g * sg;
    // d silu / dg = sg * (1 + g * (1 - sg))
    store_f32(dgate + c, d * u * (sg * (1.f + g * (1.f - sg))));
    store_f32(dup + c, d * silu);
  }
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_swiglu_forward(const void *gate, const void *up, int64_t ld_in,
                                                 void *out, int64_t rows, int64_t cols,
                                                 relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::swiglu("swiglu_forward", false, nullptr, gate, up, ld_in, out,
                                       nullptr, cols, rows, cols, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "swiglu_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *gs = static_cast<const T *>(gate);
    const T *us = static_cast<const T *>(up);
    T *os = static_cast<T *>(out);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      swiglu_forward_row(gs + r * ld_in, us + r * ld_in, os + r * cols, cols);
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_swiglu_backward(const void *dout, const void *gate,
                                                  const void *up, int64_t ld_in, void *dgate,
                                                  void *dup, int64_t ld_grad, int64_t rows,
                                                  int64_t cols, relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::swiglu("swiglu_backward", true, dout, gate, up, ld_in, dgate, dup,
                                       ld_grad, rows, cols, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "swiglu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *ds = static_cast<const T *>(dout);
    const T *gs = static_cast<const T *>(gate);
    const T *us = static_cast<const T *>(up);
    T *dgs = static_cast<T *>(dgate);
    T *dus = static_cast<T *>(dup);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      swiglu_backward_row(ds + r * cols, gs + r * ld_in, us + r * ld_in, dgs + r * ld_grad,
                          dus + r * ld_grad, cols);
    return RELAT_OK;
  });
}
