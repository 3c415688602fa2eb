// AdamW over a list of tensors, CPU twin of kernels/adamw.cu.
// Fused: decoupled weight decay, both moment updates, bias correction and the parameter update in
// one pass per element (libtorch's optimizer runs ~8 element-wise passes per tensor). The list is
// cut into fixed-size chunks that the threads share, so many small tensors (LoRA: hundreds of
// 8 x d matrices) keep both cores busy and one big tensor is split.
// Floor: bytes per element = 2*sizeof(P) (param r/w) + sizeof(G) + 16 (m, v r/w);
//        FLOPs ~ 15 per element plus one sqrt and one divide: bandwidth-bound.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "cpu_common.h"
#include "validate.h"

namespace relat::cpu {
namespace {

struct AdamWScalars {
  float decay;      // 1 - lr*weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bc2;   // sqrt(1 - beta2^step)
  float step_size;  // lr / (1 - beta1^step)
  float eps;
};

AdamWScalars scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                     int64_t step) {
  const double bc1 = 1 - std::pow(beta1, double(step));
  const double bc2 = 1 - std::pow(beta2, double(step));
  return {float(1 - lr * weight_decay), float(beta1), float(1 - beta1), float(beta2),
          float(1 - beta2), float(std::sqrt(bc2)), float(lr / bc1), float(eps)};
}

template <class P, class G>
RELAT_VECTOR_CLONES void adamw_range(P *p, const G *g, float *m, float *v, int64_t n,
                                     AdamWScalars k) {
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) {
    const float grad = to_f32(g[e]);
    const float me = k.beta1 * m[e] + k.one_minus_beta1 * grad;
    const float ve = k.beta2 * v[e] + k.one_minus_beta2 * (grad * grad);
    m[e] = me;
    v[e] = ve;
    const float denom = std::sqrt(ve) / k.sqrt_bc2 + k.eps;
    // decay is exactly 1 without weight decay. libtorch rounds p*decay before the update; here
    // the decayed value stays in fp32 (one rounding, which matters only for 16-bit params).
    p[e] = from_f32<P>(to_f32(p[e]) * k.decay - k.step_size * (me / denom));
  }
}

// Elements per unit of work shared among threads.
constexpr int64_t kChunk = 1 << 14;

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_adamw_step(void *const *params, const void *const *grads,
                                             float *const *exp_avg, float *const *exp_avg_sq,
                                             const int64_t *numels, int64_t count,
                                             relat_dtype param_dtype, relat_dtype grad_dtype,
                                             double lr, double beta1, double beta2, double eps,
                                             double weight_decay, int64_t step, relat_stream) {
  if (auto m = relat::validate::adamw_step(params, grads, exp_avg, exp_avg_sq, numels, count,
                                           param_dtype, grad_dtype, lr, beta1, beta2, eps,
                                           weight_decay, step);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (count == 0) return RELAT_OK;
  const AdamWScalars k = scalars(lr, beta1, beta2, eps, weight_decay, step);
  // Chunk j of the whole list starts at chunk_start[tensor]: a prefix sum over the tensors.
  int64_t total_chunks = 0, total_elements = 0;
  for (int64_t j = 0; j < count; ++j) {
    total_chunks += (numels[j] + kChunk - 1) / kChunk;
    total_elements += numels[j];
  }
  return dispatch_dtype(param_dtype, "adamw_step", [&](auto ptag) {
    using P = typename decltype(ptag)::type;
    auto run = [&](auto gtag) {
      using G = typename decltype(gtag)::type;
#pragma omp parallel if (total_elements >= kParallelMinElements)
      {
        // Each thread walks the list once, taking every chunk whose global number falls in its
        // static share; no table of chunks is needed.
        int64_t nthreads = 1, me = 0;
#ifdef _OPENMP
        nthreads = omp_get_num_threads();
        me = omp_get_thread_num();
#endif
        const int64_t first = total_chunks * me / nthreads;
        const int64_t last = total_chunks * (me + 1) / nthreads;
        int64_t chunk0 = 0;
        for (int64_t j = 0; j < count && chunk0 < last; ++j) {
          const int64_t chunks = (numels[j] + kChunk - 1) / kChunk;
          const int64_t lo = first > chunk0 ? first : chunk0;
          const int64_t hi = last < chunk0 + chunks ? last : chunk0 + chunks;
          if (lo < hi) {
            const int64_t e0 = (lo - chunk0) * kChunk;
            const int64_t e1 = std::min(numels[j], (hi - chunk0) * kChunk);
            adamw_range(static_cast<P *>(params[j]) + e0, static_cast<const G *>(grads[j]) + e0,
                        exp_avg[j] + e0, exp_avg_sq[j] + e0, e1 - e0, k);
          }
          chunk0 += chunks;
        }
      }
      return RELAT_OK;
    };
    if (grad_dtype == RELAT_F32) return run(type_tag<float>{});
    return run(ptag);
  });
}
