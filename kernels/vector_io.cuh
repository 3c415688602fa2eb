// Vectorised global-memory access for the row-wise and elementwise kernels: V elements of T moved
// as one 16-, 8-, 4- or 2-byte transaction, plus the host-side choice of V (largest width that the
// pointers' alignment and the row length allow). Bandwidth-bound kernels need the wide accesses:
// one 2-byte access per thread reaches a fraction of HBM bandwidth.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "cuda_common.cuh"

namespace relat::cuda {

template <int Bytes> struct raw_bits;
template <> struct raw_bits<16> { using type = uint4; };
template <> struct raw_bits<8> { using type = uint2; };
template <> struct raw_bits<4> { using type = unsigned int; };
template <> struct raw_bits<2> { using type = unsigned short; };

// V elements of T in registers; load/store move them as one aligned transaction.
template <class T, int V> struct Vec {
  using Raw = typename raw_bits<int(sizeof(T)) * V>::type;
  T v[V];

  __device__ __forceinline__ void load(const T *p) {
    const Raw r = *reinterpret_cast<const Raw *>(p);
    memcpy(v, &r, sizeof r);
  }
  __device__ __forceinline__ void store(T *p) const {
    Raw r;
    memcpy(&r, v, sizeof r);
    *reinterpret_cast<Raw *>(p) = r;
  }
};

inline bool aligned_to(const void *p, int64_t bytes) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % uintptr_t(bytes) == 0;
}

// The widest V among {16 / sizeof(T), 8 / sizeof(T), 1} such that every pointer is aligned to
// V * sizeof(T) and every length (row length, leading dimensions) is a multiple of V. When
// `min_vectors` > 0, the 16-byte width is skipped if it would leave fewer vectors than that per row
// (a warp per row wants >= 32 vectors so no lane idles). Null pointers are ignored.
template <class T>
int pick_vec(std::initializer_list<int64_t> lengths, std::initializer_list<const void *> ptrs,
             int64_t row_length = 0, int64_t min_vectors = 0) {
  constexpr int kMax = 16 / int(sizeof(T));
  for (int v : {kMax, kMax / 2}) {
    if (v <= 1) break;
    if (v == kMax && min_vectors > 0 && row_length / v < min_vectors) continue;
    bool ok = true;
    for (int64_t n : lengths) ok = ok && n % v == 0;
    for (const void *p : ptrs) ok = ok && aligned_to(p, v * int64_t(sizeof(T)));
    if (ok) return v;
  }
  return 1;
}

// Calls fn(std::integral_constant<int, V>{}) for a V returned by pick_vec<T>.
template <class T, class Fn> relat_status with_vec(int v, Fn &&fn) {
  constexpr int kMax = 16 / int(sizeof(T));
  if (v == kMax) return fn(std::integral_constant<int, kMax>{});
  if (v == kMax / 2) return fn(std::integral_constant<int, kMax / 2>{});
  return fn(std::integral_constant<int, 1>{});
}

}  // namespace relat::cuda
