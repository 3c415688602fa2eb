// The 16-bit float types of cuda_fp16.h / cuda_bf16.h for the CUDA emulation: __half,
// __nv_bfloat16, their raw and two-element forms, round-to-nearest-even conversions and the
// arithmetic kernels use. Arithmetic is done in fp32 (or fp64 for fma) and rounded once, as sm_80
// hardware does. Only the round-to-nearest conversions exist; asking for another rounding mode
// fails to compile.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_vector_types.h"

namespace relat_emu::detail {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// float -> bf16, round to nearest even; NaN becomes the canonical 0x7fff as in cuda_bf16.h.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_f32(uint16_t b) { return bits_f32(uint32_t(b) << 16); }

// double -> bf16 without double rounding: first to float rounding to odd (24 bits >= 2*8+2), then
// to bf16 rounding to nearest even.
inline uint16_t f64_to_bf16(double d) {
  if (std::isnan(d)) return 0x7fffu;
  float f = float(d);
  if (double(f) != d && std::isfinite(f)) {
    if (std::fabs(double(f)) > std::fabs(d)) f = std::nextafter(f, 0.f);
    f = bits_f32(f32_bits(f) | 1u);
  } else if (std::isinf(f) && !std::isinf(d)) {
    f = bits_f32((f32_bits(f) & 0x80000000u) | 0x7f7fffffu);  // FLT_MAX, odd: rounds on to inf
  }
  return f32_to_bf16(f);
}

inline uint16_t f32_to_f16(float f) {
  if (std::isnan(f)) return 0x7fffu;
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
inline uint16_t f64_to_f16(double d) {
  if (std::isnan(d)) return 0x7fffu;
  const _Float16 h = static_cast<_Float16>(d);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
inline float f16_to_f32(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return float(h);
}

}  // namespace relat_emu::detail

struct __half_raw {
  unsigned short x;
};
struct __nv_bfloat16_raw {
  unsigned short x;
};

// The storage member is public here (protected in CUDA): a kernel that touches it still fails in
// the nvcc build, which every change goes through.
struct __half {
  unsigned short __x;
  __half() = default;
  __half(const __half_raw &r) : __x(r.x) {}
  __half(float f) : __x(relat_emu::detail::f32_to_f16(f)) {}
  __half(double d) : __x(relat_emu::detail::f64_to_f16(d)) {}
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0> __half(I v)
      : __x(relat_emu::detail::f64_to_f16(double(v))) {}
  __half &operator=(const __half_raw &r) {
    __x = r.x;
    return *this;
  }
  operator float() const { return relat_emu::detail::f16_to_f32(__x); }
  operator __half_raw() const { return __half_raw{__x}; }
};

struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(const __nv_bfloat16_raw &r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(relat_emu::detail::f32_to_bf16(f)) {}
  __nv_bfloat16(double d) : __x(relat_emu::detail::f64_to_bf16(d)) {}
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0> __nv_bfloat16(I v)
      : __x(relat_emu::detail::f64_to_bf16(double(v))) {}
  __nv_bfloat16 &operator=(const __nv_bfloat16_raw &r) {
    __x = r.x;
    return *this;
  }
  operator float() const { return relat_emu::detail::bf16_to_f32(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};

struct alignas(4) __half2 {
  __half x, y;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

static_assert(sizeof(__half) == 2 && alignof(__half) == 2, "__half layout");
static_assert(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat16) == 2, "__nv_bfloat16 layout");
static_assert(std::is_trivially_copyable_v<__half> && std::is_trivially_copyable_v<__nv_bfloat16>,
              "16-bit types must be trivially copyable, as kernel parameters and shuffle values");

// ---- conversions -------------------------------------------------------------------------------
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __float2half(float f) { return __half(f); }
inline __half __double2half(double d) { return __half(d); }
inline float __half2float(__half h) { return float(h); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return __nv_bfloat16(d); }
inline float __bfloat162float(__nv_bfloat16 b) { return float(b); }

inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline short __half_as_short(__half h) { return short(h.__x); }
inline __half __ushort_as_half(unsigned short b) { return __half(__half_raw{b}); }
inline __half __short_as_half(short b) { return __half(__half_raw{(unsigned short)b}); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline short __bfloat16_as_short(__nv_bfloat16 h) { return short(h.__x); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) {
  return __nv_bfloat16(__nv_bfloat16_raw{b});
}
inline __nv_bfloat16 __short_as_bfloat16(short b) {
  return __nv_bfloat16(__nv_bfloat16_raw{(unsigned short)b});
}

inline bool __hisnan(__half h) { return (h.__x & 0x7fffu) > 0x7c00u; }
inline bool __hisnan(__nv_bfloat16 h) { return (h.__x & 0x7fffu) > 0x7f80u; }
inline int __hisinf(__half h) { return h.__x == 0x7c00u ? 1 : h.__x == 0xfc00u ? -1 : 0; }
inline int __hisinf(__nv_bfloat16 h) { return h.__x == 0x7f80u ? 1 : h.__x == 0xff80u ? -1 : 0; }

// ---- scalar arithmetic: one rounding of the exact-or-fp32 result -------------------------------
#define RELAT_EMU_HALF_ARITH(H)                                               \
  inline H __hadd(H a, H b) { return H(float(a) + float(b)); }                \
  inline H __hsub(H a, H b) { return H(float(a) - float(b)); }                \
  inline H __hmul(H a, H b) { return H(float(a) * float(b)); }                \
  inline H __hdiv(H a, H b) { return H(float(a) / float(b)); }                \
  inline H __hfma(H a, H b, H c) {                                            \
    return H(std::fma(double(float(a)), double(float(b)), double(float(c)))); \
  }                                                                           \
  inline H __hneg(H a) {                                                      \
    H r = a;                                                                  \
    r.__x ^= 0x8000u;                                                         \
    return r;                                                                 \
  }                                                                           \
  inline H __habs(H a) {                                                      \
    H r = a;                                                                  \
    r.__x &= 0x7fffu;                                                         \
    return r;                                                                 \
  }                                                                           \
  inline H __hmax(H a, H b) { return H(std::fmax(float(a), float(b))); }      \
  inline H __hmin(H a, H b) { return H(std::fmin(float(a), float(b))); }      \
  inline bool __heq(H a, H b) { return float(a) == float(b); }                \
  inline bool __hne(H a, H b) { return float(a) != float(b); }                \
  inline bool __hlt(H a, H b) { return float(a) < float(b); }                 \
  inline bool __hle(H a, H b) { return float(a) <= float(b); }                \
  inline bool __hgt(H a, H b) { return float(a) > float(b); }                 \
  inline bool __hge(H a, H b) { return float(a) >= float(b); }                \
  inline H operator+(const H &a, const H &b) { return __hadd(a, b); }         \
  inline H operator-(const H &a, const H &b) { return __hsub(a, b); }         \
  inline H operator*(const H &a, const H &b) { return __hmul(a, b); }         \
  inline H operator/(const H &a, const H &b) { return __hdiv(a, b); }         \
  inline H &operator+=(H &a, const H &b) { return a = __hadd(a, b); }         \
  inline H &operator-=(H &a, const H &b) { return a = __hsub(a, b); }         \
  inline H &operator*=(H &a, const H &b) { return a = __hmul(a, b); }         \
  inline H &operator/=(H &a, const H &b) { return a = __hdiv(a, b); }         \
  inline H operator+(const H &a) { return a; }                                \
  inline H operator-(const H &a) { return __hneg(a); }                        \
  inline bool operator==(const H &a, const H &b) { return __heq(a, b); }      \
  inline bool operator!=(const H &a, const H &b) { return __hne(a, b); }      \
  inline bool operator<(const H &a, const H &b) { return __hlt(a, b); }       \
  inline bool operator<=(const H &a, const H &b) { return __hle(a, b); }      \
  inline bool operator>(const H &a, const H &b) { return __hgt(a, b); }       \
  inline bool operator>=(const H &a, const H &b) { return __hge(a, b); }

RELAT_EMU_HALF_ARITH(__half)
RELAT_EMU_HALF_ARITH(__nv_bfloat16)
#undef RELAT_EMU_HALF_ARITH

// ---- pairs --------------------------------------------------------------------------------------
inline __half2 __halves2half2(__half a, __half b) { return __half2{a, b}; }
inline __half2 __half2half2(__half a) { return __half2{a, a}; }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__half(a), __half(b)}; }
inline __half2 __float2half2_rn(float a) { return __half2{__half(a), __half(a)}; }
inline __half2 __float22half2_rn(float2 v) { return __half2{__half(v.x), __half(v.y)}; }
inline float2 __half22float2(__half2 h) { return float2{float(h.x), float(h.y)}; }
inline float __low2float(__half2 h) { return float(h.x); }
inline float __high2float(__half2 h) { return float(h.y); }
inline __half __low2half(__half2 h) { return h.x; }
inline __half __high2half(__half2 h) { return h.y; }

inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return {a, b}; }
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) { return {a, a}; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__nv_bfloat16(a), __nv_bfloat16(b)};
}
inline __nv_bfloat162 __float2bfloat162_rn(float a) { return {__nv_bfloat16(a), __nv_bfloat16(a)}; }
inline __nv_bfloat162 __float22bfloat162_rn(float2 v) {
  return {__nv_bfloat16(v.x), __nv_bfloat16(v.y)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{float(h.x), float(h.y)}; }
inline float __low2float(__nv_bfloat162 h) { return float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return float(h.y); }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }

#define RELAT_EMU_PAIR_ARITH(H2)                                                 \
  inline H2 __hadd2(H2 a, H2 b) { return {__hadd(a.x, b.x), __hadd(a.y, b.y)}; } \
  inline H2 __hsub2(H2 a, H2 b) { return {__hsub(a.x, b.x), __hsub(a.y, b.y)}; } \
  inline H2 __hmul2(H2 a, H2 b) { return {__hmul(a.x, b.x), __hmul(a.y, b.y)}; } \
  inline H2 __hfma2(H2 a, H2 b, H2 c) { return {__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)}; }

RELAT_EMU_PAIR_ARITH(__half2)
RELAT_EMU_PAIR_ARITH(__nv_bfloat162)
#undef RELAT_EMU_PAIR_ARITH
