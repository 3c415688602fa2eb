// Vectorisable math for the CPU twins. glibc's expf is not vectorised without -ffast-math, and a
// scalar expf per element would make the elementwise kernels compute-bound; these inline versions
// use only +, *, comparisons and integer bit operations, so `#pragma omp simd` loops vectorise
// them for every target clone.
#pragma once

#include <cstdint>
#include <cstring>

namespace relat::cpu {

// exp(x) for fp32, Cephes-style: x = k ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial,
// 2^k by building the exponent bits. Max relative error ~2 ulp over the clamped range; inputs are
// clamped to [-87.3, 88] (results then saturate at ~1e-38 / ~1.6e38 instead of 0 / inf); NaN in
// gives NaN out.
inline float exp_f32(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.f ? 88.f : x;  // k <= 127: the exponent bits stay finite
  // k = round(x / ln2) by the 1.5 * 2^23 trick (exact for |k| < 2^22, vectorises without SSE4.1).
  const float shifter = 12582912.f;
  float k = x * 1.44269504088896341f + shifter;
  k -= shifter;
  float r = x - k * 0.693359375f;  // ln2 split in two for an exact product with the high part
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
