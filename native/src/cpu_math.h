// Vectorisable math for the CPU twins. glibc's expf is not vectorised without -ffast-math, and a
// scalar expf per element would make the elementwise kernels compute-bound; these inline versions
// use only +, *, comparisons and integer bit operations, so `#pragma omp simd` loops vectorise
// them for every target clone.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu_common.h"

namespace relat::cpu {

// dst[0] = v rounded to the storage type. Same rounding as from_f32 (nearest even, NaN stays NaN),
// but it stores plain 16-bit integers: `*dst = from_f32<bf16>(v)` copies a struct, which the
// `omp simd` lowering privatises into an array and then refuses to vectorise.
inline void store_f32(float *dst, float v) { *dst = v; }
inline void store_f32(bf16 *dst, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  *reinterpret_cast<uint16_t *>(dst) = uint16_t((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}
inline void store_f32(f16 *dst, float v) { *reinterpret_cast<_Float16 *>(dst) = (_Float16)v; }

// v rounded to the storage type T and back: the value store_f32 would write, as a float.
template <class T> inline float round_f32(float v) {
  T t;
  store_f32(&t, v);
  return to_f32(t);
}
template <> inline float round_f32<float>(float v) { return v; }

// exp(x) for fp32, Cephes-style: x = k ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial,
// 2^k by building the exponent bits. Max relative error ~2 ulp. Inputs are clamped to
// [-87.3, 88] (results then saturate at ~1e-38 / ~1.6e38 instead of 0 / inf); a NaN input gives an
// unspecified finite value (the SwiGLU callers multiply by the input, so NaN still propagates).
// The clamp is done with integer min on the bit patterns: written as float compares, GCC threads
// the constant-result paths into branches and the loop no longer vectorises.
inline float exp_f32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  // Negative floats, as unsigned, grow with magnitude and lie above every positive float.
  const uint32_t lo = 0xC2AE999Au;  // bits of -87.3f
  const int32_t hi = 0x42B00000;    // bits of 88.0f; negatives are < 0 as int32
  uint32_t c = u < lo ? u : lo;
  int32_t ci = int32_t(c);
  ci = ci < hi ? ci : hi;
  float xc;
  std::memcpy(&xc, &ci, 4);
  // k = round(x / ln2) by the 1.5 * 2^23 trick (exact for |k| < 2^22, vectorises without SSE4.1).
  const float shifter = 12582912.f;
  float k = xc * 1.44269504088896341f + shifter;
  k -= shifter;
  float r = xc - k * 0.693359375f;  // ln2 split in two for an exact product with the high part
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t ki = int32_t(k);
  const uint32_t bits = uint32_t(ki + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// 1 / (1 + exp(-x)).
inline float sigmoid_f32(float x) { return 1.f / (1.f + exp_f32(-x)); }

}  // namespace relat::cpu
