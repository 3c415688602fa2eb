// The arithmetic that defines a sampled token, shared by the CPU twin (native/src/sample.cpp) and
// the CUDA kernel (kernels/sample.cu). Both libraries must pick the same token for the same
// (logits, seed, step), so everything that decides the choice is integer arithmetic or a fixed
// sequence of correctly rounded fp32/fp64 operations (explicit fma, no contractible a*b+c):
//  - the order of tokens: a 64-bit composite key (logit order key << 23 | (2^23-1 - index)), larger
//    first; unique per token, so "ties by lowest index" is built in;
//  - the mass of a token: floor(exp(s - max s) * 2^40) as an integer, with exp evaluated by the
//    polynomial below (not expf, whose last bit differs between glibc and CUDA); sums of masses are
//    exact and independent of the summation order;
//  - the random number: Philox-4x32-10 on the counter (step, row) with the key seed.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RELAT_SAMPLE_HD __host__ __device__ __forceinline__
#else
#define RELAT_SAMPLE_HD inline
#endif

namespace relat::sample_math {

RELAT_SAMPLE_HD float float_from_bits(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float f;
  __builtin_memcpy(&f, &b, 4);
  return f;
#endif
}
RELAT_SAMPLE_HD uint32_t bits_from_float(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t b;
  __builtin_memcpy(&b, &f, 4);
  return b;
#endif
}

constexpr int kIndexBits = 23;  // vocab <= 2^23 (validate.h: kSampleMaxVocab)
constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;
constexpr int kMassShift = 40;  // a token's mass is < 2^40 + 1; 2^23 of them sum below 2^64

// Order keys: unsigned integers ordered like the values. -0 maps to +0's key; NaN maps to 0,
// below -inf, so it is never preferred over a number.
RELAT_SAMPLE_HD uint32_t order_key_f32(uint32_t bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0;  // NaN
  if (bits == 0x80000000u) bits = 0;                  // -0 == +0
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
RELAT_SAMPLE_HD uint32_t order_key_16(uint32_t bits, uint32_t inf_bits) {
  if ((bits & 0x7fffu) > inf_bits) return 0;  // NaN
  if (bits == 0x8000u) bits = 0;
  return (bits & 0x8000u) ? (~bits & 0xffffu) : (bits | 0x8000u);
}
RELAT_SAMPLE_HD uint32_t order_key_bf16(uint32_t bits) { return order_key_16(bits, 0x7f80u); }
RELAT_SAMPLE_HD uint32_t order_key_f16(uint32_t bits) { return order_key_16(bits, 0x7c00u); }

RELAT_SAMPLE_HD uint64_t composite(uint32_t key, int64_t index) {
  return (uint64_t(key) << kIndexBits) | (kIndexMask - uint64_t(index));
}
RELAT_SAMPLE_HD int64_t index_of(uint64_t composite_key) {
  return int64_t(kIndexMask - (composite_key & kIndexMask));
}

// floor(exp(d) * 2^40) for d <= 0 (0 for d < -27.7, where it would be below 1, and for NaN).
// exp(d) = 2^k * exp(r), r = d - k*ln2 with ln2 split in two (Cephes), exp(r) by Cephes' expf
// polynomial; relative error ~1e-7. Every operation is a single correctly rounded one, and the
// float -> integer step is done on the bits, so the function is branch-free and vectorises.
RELAT_SAMPLE_HD uint64_t mass(float d) {
  // live = (d >= -27.7f), false for NaN, decided on the bits: a floating-point compare may trap,
  // which stops compilers from turning the selects below into vector blends.
  const uint32_t db = bits_from_float(d);
  const uint32_t limit = (db >> 31) ? 0xC1DD999Au : 0x7f800000u;  // -27.7f, +inf
  const bool live = db <= limit;
  const float dc = live ? d : 0.0f;
  const float k = rintf(dc * 1.44269504088896341f);  // in [-40, 0]
  float r = fmaf(k, -0.693359375f, dc);
  r = fmaf(k, 2.12194440e-4f, r);
  float p = fmaf(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  const float z = r * r;
  const float y = fmaf(p, z, r) + 1.0f;
  // scaled = y * 2^(k + 40): the power of two is exact, so is the product.
  const uint32_t scale_bits = uint32_t(int(k) + kMassShift + 127) << 23;
  const float scaled = y * float_from_bits(scale_bits);
  // floor(scaled) from its bits: (1.mantissa) * 2^e, e in [-1, 40]; one of the two shifts is 0,
  // and both counts stay in range, so there is nothing to branch on.
  const uint32_t b = bits_from_float(scaled);
  const int e = int(b >> 23) - 127;
  const uint64_t m = uint64_t((b & 0x7fffffu) | 0x800000u);
  const int left = e > 23 ? e - 23 : 0;
  const int right = e < 23 ? (e > -1 ? 23 - e : 24) : 0;
  const uint64_t v = (m << left) >> right;
  return live ? v : 0;
}

// Philox-4x32-10 (Salmon et al., SC'11): counter (c0..c3), key (k0, k1); returns the first two
// output words as one 64-bit number.
RELAT_SAMPLE_HD uint64_t philox(uint64_t seed, uint64_t step, uint64_t row) {
  uint32_t c0 = uint32_t(step), c1 = uint32_t(step >> 32), c2 = uint32_t(row),
           c3 = uint32_t(row >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = uint32_t(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return (uint64_t(c1) << 32) | c0;
}

// floor(r * n / 2^64): a uniform integer in [0, n) from a uniform 64-bit r.
RELAT_SAMPLE_HD uint64_t scale_uniform(uint64_t r, uint64_t n) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, n);
#else
  return uint64_t((unsigned __int128)r * n >> 64);
#endif
}

// The mass the top-p prefix must reach: ceil(top_p * total), clamped to [1, total].
RELAT_SAMPLE_HD uint64_t top_p_target(float top_p, uint64_t total) {
  const double t = ceil(double(top_p) * double(total));
  if (!(t >= 1.0)) return 1;
  if (t >= double(total)) return total;
  return uint64_t(t);
}

}  // namespace relat::sample_math
