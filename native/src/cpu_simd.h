// Portable 8-lane fp32 vectors (GCC vector extensions) and a vectorisable exp for the CPU twins.
// Code written with v8f compiles to one ymm register per value inside RELAT_VECTOR_CLONES
// functions built for x86-64-v3/v4 (AVX2 + FMA) and to pairs of xmm registers in the baseline
// clone, so one source serves every x86-64 host. librelat_cpu compiles the files using these
// helpers with -ffp-contract=fast (RELAT_CPU_FMA_SOURCES in cmake/RelatSources.cmake), so that
// `c += a * b` becomes one FMA; without it (sanitized test builds) it is a multiply and an add.
// Every helper is always_inline: it must be inlined into the clone that calls it to be compiled
// for that clone's instruction set.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu_common.h"

// The helpers pass 32-byte vectors by value but are always inlined: no call, so no ABI to warn about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace relat::cpu {

typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_unaligned __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t v8i __attribute__((vector_size(32)));

#define RELAT_INLINE inline __attribute__((always_inline))

RELAT_INLINE v8f load8(const float *p) { return *reinterpret_cast<const v8f_unaligned *>(p); }
RELAT_INLINE void store8(float *p, v8f v) { *reinterpret_cast<v8f_unaligned *>(p) = v; }
RELAT_INLINE v8f splat8(float x) { return v8f{x, x, x, x, x, x, x, x}; }

// exp(x) for x <= 88, to about 2 ulp; x <= -87.3 gives a subnormal-free ~0 (exp(-87.3) ~ 1e-38),
// -inf gives 0. Branch-free, so loops over it vectorise. Cody-Waite reduction x = n ln2 + r,
// |r| <= ln2/2, degree-6 Taylor polynomial of exp(r) (error < 2.4e-8 relative), 2^n by exponent bits.
RELAT_INLINE float exp_f32(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.f ? 88.f : x;
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f;  // ln2 split in a short high part and the rest
  r = r - n * -2.12194440e-4f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t e = int32_t(n) + 127;
  float scale;
  const uint32_t bits = uint32_t(e) << 23;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

RELAT_INLINE v8f exp8(v8f x) {
  const v8f lo = splat8(-87.3f), hi = splat8(88.f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const v8f magic = splat8(12582912.f);
  const v8f n = (x * splat8(1.44269504088896341f) + magic) - magic;
  v8f r = x - n * splat8(0.693359375f);
  r = r - n * splat8(-2.12194440e-4f);
  v8f p = splat8(1.f / 720.f);
  p = p * r + splat8(1.f / 120.f);
  p = p * r + splat8(1.f / 24.f);
  p = p * r + splat8(1.f / 6.f);
  p = p * r + splat8(0.5f);
  p = p * r + splat8(1.f);
  p = p * r + splat8(1.f);
  const v8i e = __builtin_convertvector(n, v8i) + 127;
  v8f scale;
  const v8i bits = e << 23;
  std::memcpy(&scale, &bits, 32);
  return p * scale;
}

RELAT_INLINE v8f max8(v8f a, v8f b) { return a > b ? a : b; }

RELAT_INLINE float hsum8(v8f v) {
  float s = 0.f;
  for (int i = 0; i < 8; ++i) s += v[i];
  return s;
}

RELAT_INLINE float hmax8(v8f v) {
  float m = v[0];
  for (int i = 1; i < 8; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// Loads 8 storage values as fp32.
RELAT_INLINE v8f load8_f32(const float *p) { return load8(p); }
RELAT_INLINE v8f load8_f32(const bf16 *p) {
  typedef uint16_t v8u16 __attribute__((vector_size(16), aligned(2), may_alias));
  typedef uint32_t v8u32 __attribute__((vector_size(32)));
  const v8u16 raw = *reinterpret_cast<const v8u16 *>(p);
  const v8u32 wide = __builtin_convertvector(raw, v8u32) << 16;
  v8f f;
  std::memcpy(&f, &wide, 32);
  return f;
}
RELAT_INLINE v8f load8_f32(const f16 *p) {
  typedef _Float16 v8h __attribute__((vector_size(16), aligned(2), may_alias));
  const v8h raw = *reinterpret_cast<const v8h *>(p);
  return __builtin_convertvector(raw, v8f);
}

// Converts n storage values to fp32 (vectorised body, scalar tail).
template <class T> RELAT_INLINE void to_f32_row(const T *src, float *dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(dst + i, load8_f32(src + i));
  for (; i < n; ++i) dst[i] = to_f32(src[i]);
}

}  // namespace relat::cpu
