// CPU building blocks shared by attention.cpp (training forward/backward) and decode_attention.cpp:
// register-blocked fp32 micro-GEMMs, a vectorised exp2, and the online-softmax step over one tile
// of keys. Every routine works on fp32 tiles that the callers fill from the bf16/f16/fp32 storage.
//
// The micro-kernels use GCC vector extensions (8 floats) rather than relying on the
// auto-vectoriser: a 6x16 block of C stays in 12 registers while A is broadcast and B streamed,
// the classic BLIS-style shape for AVX2. The callers are compiled for x86-64-v4/v3/baseline
// (RELAT_VECTOR_CLONES) and the always_inline kernels are inlined into each clone; the attention
// sources are compiled with -ffp-contract=fast so that acc += a * b becomes an FMA.
#pragma once

// The 8-float vectors only pass between always_inline helpers: the note that their calling
// convention differs without AVX is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu_common.h"

namespace relat::cpu::attn {

#define RELAT_INLINE inline __attribute__((always_inline))

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

RELAT_INLINE v8f load8(const float *p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
RELAT_INLINE void store8(float *p, v8f v) { std::memcpy(p, &v, sizeof v); }
RELAT_INLINE v8f splat8(float s) { return v8f{} + s; }

// 2^x, vectorised: x = n + f with n = round(x), f in [-0.5, 0.5]; 2^f by its degree-7 Taylor
// polynomial (relative error < 1e-8 before rounding), 2^n through the exponent bits. Inputs are
// clamped to [-127, 127]; -inf and anything below -127 give 0 (results below 2^-126 flush to 0).
RELAT_INLINE v8f exp2v(v8f x) {
  x = x < -127.f ? splat8(-127.f) : x;
  x = x > 127.f ? splat8(127.f) : x;
  const v8f magic = splat8(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  const v8f n = (x + magic) - magic;
  const v8f f = x - n;
  const float c1 = 0.6931471805599453f, c2 = 0.2402265069591007f, c3 = 0.05550410866482158f,
              c4 = 0.009618129107628477f, c5 = 0.0013333558146428443f,
              c6 = 1.5403530393381606e-4f, c7 = 1.525273380405984e-5f;
  v8f p = c7 * f + c6;
  p = p * f + c5;
  p = p * f + c4;
  p = p * f + c3;
  p = p * f + c2;
  p = p * f + c1;
  p = p * f + 1.f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  return p * (v8f)bits;
}

RELAT_INLINE float exp2s(float x) { return exp2v(splat8(x))[0]; }

RELAT_INLINE float hmax8(v8f v) {
  float m = v[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, v[i]);
  return m;
}
RELAT_INLINE float hsum8(v8f v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// C[MR x 16] (+)= A[MR x k] * B[k x 16]; A row-major (lda), B row-major (ldb), C row-major (ldc).
template <int MR, bool kAccumulate>
RELAT_INLINE void micro_kernel(int k, const float *a, int64_t lda, const float *b, int64_t ldb,
                               float *c, int64_t ldc) {
  v8f acc[MR][2];
  for (int i = 0; i < MR; ++i) {
    if (kAccumulate) {
      acc[i][0] = load8(c + i * ldc);
      acc[i][1] = load8(c + i * ldc + 8);
    } else {
      acc[i][0] = v8f{};
      acc[i][1] = v8f{};
    }
  }
  for (int p = 0; p < k; ++p) {
    const v8f b0 = load8(b + p * ldb), b1 = load8(b + p * ldb + 8);
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i * lda + p];
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < MR; ++i) {
    store8(c + i * ldc, acc[i][0]);
    store8(c + i * ldc + 8, acc[i][1]);
  }
}

// C[m x n] (+)= A[m x k] * B[k x n], n a multiple of 16. Row blocks of 6 (the remainder 1..5).
template <bool kAccumulate>
RELAT_INLINE void gemm(int m, int n, int k, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float *c, int64_t ldc) {
  for (int j = 0; j < n; j += 16) {
    int i = 0;
    for (; i + 6 <= m; i += 6)
      micro_kernel<6, kAccumulate>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc);
    const float *ai = a + i * lda;
    float *ci = c + i * ldc + j;
    switch (m - i) {
      case 5: micro_kernel<5, kAccumulate>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 4: micro_kernel<4, kAccumulate>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 3: micro_kernel<3, kAccumulate>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 2: micro_kernel<2, kAccumulate>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 1: micro_kernel<1, kAccumulate>(k, ai, lda, b + j, ldb, ci, ldc); break;
      default: break;
    }
  }
}

// Keys per tile: a multiple of 16 (the micro-kernel width) and of 8 (the softmax vectors).
constexpr int kBN = 64;

// Loads keys [k0, k0 + nk) of one KV head into fp32 tiles, zero-padding up to kBN keys:
// kt = K^T [D][kBN] (for S = Q K^T), vf = V [kBN][D]. base points at (key 0, this head).
template <class T, int D>
RELAT_INLINE void load_kv_tile(const T *kbase, const T *vbase, int64_t stride, int64_t k0, int nk,
                               float *kt, float *vf) {
  for (int j = 0; j < nk; ++j) {
    const T *kr = kbase + (k0 + j) * stride;
    const T *vr = vbase + (k0 + j) * stride;
    for (int d = 0; d < D; ++d) kt[d * kBN + j] = to_f32(kr[d]);
    for (int d = 0; d < D; ++d) vf[j * D + d] = to_f32(vr[d]);
  }
  for (int j = nk; j < kBN; ++j) {
    for (int d = 0; d < D; ++d) kt[d * kBN + j] = 0.f;
    for (int d = 0; d < D; ++d) vf[j * D + d] = 0.f;
  }
}

// Online-softmax state of up to kMaxRows rows: o (unnormalised, [rows][D]), running max m (log2
// units of the scaled scores) and running sum l.
template <int D, int kMaxRows> struct SoftmaxState {
  alignas(64) float o[kMaxRows * D];
  float m[kMaxRows];
  float l[kMaxRows];
  void reset(int rows) {
    std::fill(o, o + rows * D, 0.f);
    std::fill(m, m + rows, kNegInf);
    std::fill(l, l + rows, 0.f);
  }
};

// One key tile of the forward: qf holds the rows' queries pre-multiplied by scale*log2(e); row r
// sees the first lim[r] keys of the tile (lim <= nk, may be <= 0). Updates the state in place.
template <int D, int kMaxRows>
RELAT_INLINE void attend_tile(const float *qf, int rows, const int *lim, const float *kt,
                              const float *vf, int nk, float *s, SoftmaxState<D, kMaxRows> &st) {
  gemm<false>(rows, kBN, D, qf, D, kt, kBN, s, kBN);
  v8i iota;
  for (int i = 0; i < 8; ++i) iota[i] = i;
  for (int r = 0; r < rows; ++r) {
    float *sr = s + r * kBN;
    const int valid = std::min(lim[r], nk);
    if (valid <= 0) {
      std::fill(sr, sr + kBN, 0.f);
      continue;
    }
    v8f mx = splat8(kNegInf);
    for (int j = 0; j < kBN; j += 8) {
      const v8f x = load8(sr + j);
      const v8f masked = (iota + j) < valid ? x : splat8(kNegInf);
      mx = masked > mx ? masked : mx;
    }
    const float m_old = st.m[r];
    const float m_new = std::max(m_old, hmax8(mx));
    const float alpha = exp2s(m_old - m_new);  // m_old = -inf gives 0
    v8f sum = v8f{};
    for (int j = 0; j < kBN; j += 8) {
      const v8f x = load8(sr + j);
      v8f p = exp2v(x - m_new);
      p = (iota + j) < valid ? p : v8f{};
      sum += p;
      store8(sr + j, p);
    }
    st.l[r] = st.l[r] * alpha + hsum8(sum);
    st.m[r] = m_new;
    if (alpha != 1.f) {
      float *orow = st.o + r * D;
      for (int d = 0; d < D; d += 8) store8(orow + d, load8(orow + d) * alpha);
    }
  }
  gemm<true>(rows, D, nk, s, kBN, vf, D, st.o, D);
}

}  // namespace relat::cpu::attn
