// Shared helpers for the CPU twins: dtype conversion, error reporting, threading.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "relat/relat.h"

// Hot loops are compiled for AVX-512, AVX2+FMA and baseline x86-64; the loader picks the best
// one at run time, so one library serves every x86-64 host.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define RELAT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RELAT_VECTOR_CLONES
#endif

namespace relat::cpu {

relat_status fail(relat_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_error();

// Storage types. bf16 and f16 are 16-bit patterns; arithmetic is always fp32.
struct bf16 { uint16_t bits; };
struct f16 { uint16_t bits; };

inline float to_f32(float v) { return v; }
inline float to_f32(bf16 v) {
  uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float to_f32(f16 v) {
  _Float16 h;
  std::memcpy(&h, &v.bits, 2);
  return float(h);
}

template <class T> inline T from_f32(float f);
template <> inline float from_f32<float>(float f) { return f; }
template <> inline bf16 from_f32<bf16>(float f) {  // round to nearest even, NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}
template <> inline f16 from_f32<f16>(float f) {
  _Float16 h = (_Float16)f;
  f16 r;
  std::memcpy(&r.bits, &h, 2);
  return r;
}

// Calls fn(type_tag<T>{}) for the storage type named by the dtype tag.
template <class T> struct type_tag { using type = T; };

template <class Fn> relat_status dispatch_dtype(relat_dtype dtype, const char *op, Fn &&fn) {
  switch (dtype) {
    case RELAT_F32: return fn(type_tag<float>{});
    case RELAT_BF16: return fn(type_tag<bf16>{});
    case RELAT_F16: return fn(type_tag<f16>{});
  }
  return fail(RELAT_ERR_INVALID_ARGUMENT, "%s: unknown dtype tag %d", op, int(dtype));
}

// Work below this many elements runs on the calling thread: a parallel region costs more.
constexpr int64_t kParallelMinElements = 1 << 15;

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Workspaces: one caller buffer of any alignment, carved into 64-byte aligned regions. A layout
// takes its regions in order and asks for kAlign bytes of slack; the kernel aligns the base.
constexpr int64_t kAlign = 64;

struct WorkspaceCarver {
  int64_t end = 0;  // bytes taken so far
  int64_t take(int64_t bytes) {  // offset of a new region of `bytes`
    const int64_t at = end;
    end += round_up(bytes, kAlign);
    return at;
  }
  int64_t total() const { return end + kAlign; }  // with the slack for aligning the base
};

inline char *aligned(void *p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<char *>((a + kAlign - 1) / kAlign * kAlign);
}

}  // namespace relat::cpu
