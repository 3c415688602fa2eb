// RoPE forward and backward, CPU twin of kernels/rope.cu.
// Fused: the angle (position * inv_freq), its cos/sin and the rotation of every q and k head of a
// token happen in one pass; the cos/sin of a token are computed once (D/2 of them, vectorised,
// rope_math.h, bit-identical to the CUDA kernel's) and reused by all q_heads + kv_heads heads, so no
// [tokens, D] cos/sin tables are ever written or read.
// Backward is the same pass with sin negated (the rotation's transpose).
// Floor: bytes = tokens*(q_heads+kv_heads)*head_dim*2*sizeof(T) (read x, write out) + tokens*8;
//        FLOPs ~ 3 per element + one sincos per (token, pair): bandwidth-bound once the heads
//        outnumber the sincos cost (24-40 heads per token in Qwen3).
#include <cmath>

#include "cpu_common.h"
#include "rope_math.h"
#include "validate.h"

namespace relat::cpu {
namespace {

// Rotates one head in place or out of place: x and out point at the head's first element.
template <class T>
RELAT_VECTOR_CLONES void rotate_head(const T *x, T *out, const float *c, const float *s,
                                     int64_t half) {
  // Loads first: out may alias x.
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = to_f32(x[i]), x2 = to_f32(x[i + half]);
    const float o1 = x1 * c[i] - x2 * s[i];
    const float o2 = x2 * c[i] + x1 * s[i];
    out[i] = from_f32<T>(o1);
    out[i + half] = from_f32<T>(o2);
  }
}

RELAT_VECTOR_CLONES void cos_sin(float position, const float *inv_freq, int64_t half, float sign,
                                 float *c, float *s) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    float sn, cs;
    relat::rope_math::sincos_angle(position * inv_freq[i], &sn, &cs);
    c[i] = cs;
    s[i] = sign * sn;
  }
}

template <class T>
void rope_token(const T *q, const T *k, T *q_out, T *k_out, int64_t position,
                const float *inv_freq, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                float sign) {
  const int64_t half = head_dim / 2;
  float c[512], s[512];
  cos_sin(float(position), inv_freq, half, sign, c, s);
  for (int64_t h = 0; h < q_heads; ++h)
    rotate_head(q + h * head_dim, q_out + h * head_dim, c, s, half);
  for (int64_t h = 0; h < kv_heads; ++h)
    rotate_head(k + h * head_dim, k_out + h * head_dim, c, s, half);
}

relat_status rope(const char *op, const void *q, const void *k, void *q_out, void *k_out,
                  const int64_t *positions, const float *inv_freq, int64_t tokens,
                  int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t ldq, int64_t ldk,
                  relat_dtype dtype, float sign) {
  if (auto m = relat::validate::rope(op, q, k, q_out, k_out, positions, inv_freq, tokens, q_heads,
                                     kv_heads, head_dim, ldq, ldk, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tokens == 0 || q_heads + kv_heads == 0) return RELAT_OK;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *qs = static_cast<const T *>(q);
    const T *ks = static_cast<const T *>(k);
    T *qo = static_cast<T *>(q_out);
    T *ko = static_cast<T *>(k_out);
    const int64_t work = tokens * (q_heads + kv_heads) * head_dim;
#pragma omp parallel for schedule(static) if (work >= kParallelMinElements)
    for (int64_t t = 0; t < tokens; ++t)
      rope_token(qs + t * ldq, kv_heads ? ks + t * ldk : nullptr, qo + t * ldq,
                 kv_heads ? ko + t * ldk : nullptr, positions[t], inv_freq, q_heads, kv_heads,
                 head_dim, sign);
    return RELAT_OK;
  });
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_rope_forward(const void *q, const void *k, void *q_out,
                                               void *k_out, const int64_t *positions,
                                               const float *inv_freq, int64_t tokens,
                                               int64_t q_heads, int64_t kv_heads,
                                               int64_t head_dim, int64_t ldq, int64_t ldk,
                                               relat_dtype dtype, relat_stream) {
  return rope("rope_forward", q, k, q_out, k_out, positions, inv_freq, tokens, q_heads, kv_heads,
              head_dim, ldq, ldk, dtype, 1.f);
}

extern "C" relat_status relat_cpu_rope_backward(const void *dq, const void *dk, void *dq_in,
                                                void *dk_in, const int64_t *positions,
                                                const float *inv_freq, int64_t tokens,
                                                int64_t q_heads, int64_t kv_heads,
                                                int64_t head_dim, int64_t ldq, int64_t ldk,
                                                relat_dtype dtype, relat_stream) {
  return rope("rope_backward", dq, dk, dq_in, dk_in, positions, inv_freq, tokens, q_heads,
              kv_heads, head_dim, ldq, ldk, dtype, -1.f);
}
