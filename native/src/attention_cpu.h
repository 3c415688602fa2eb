// CPU building blocks shared by attention.cpp (training forward/backward) and decode_attention.cpp:
// register-blocked fp32 micro-GEMMs, a vectorised exp2, and the online-softmax step over one tile
// of keys, in two orientations: keys-major (S^T = K Q^T, for the training forward's 16-48 rows)
// and rows-major with dot-product scores (decode's handful of rows). Every routine works on fp32
// tiles that the callers fill from the bf16/f16/fp32 storage.
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

// C[MR x 16] (+)= A[MR x k] * B[k x 16]; B row-major (ldb), C row-major (ldc). A is row-major
// (element (i, p) at a[i*lda + p]) or, with kATrans, column-major (a[p*lda + i]).
template <int MR, bool kAccumulate, bool kATrans>
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
      const float ai = kATrans ? a[p * lda + i] : a[i * lda + p];
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
template <bool kAccumulate, bool kATrans = false>
RELAT_INLINE void gemm(int m, int n, int k, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float *c, int64_t ldc) {
  const int64_t row_step = kATrans ? 1 : lda;  // distance between rows i and i+1 of A
  for (int j = 0; j < n; j += 16) {
    int i = 0;
    for (; i + 6 <= m; i += 6)
      micro_kernel<6, kAccumulate, kATrans>(k, a + i * row_step, lda, b + j, ldb, c + i * ldc + j, ldc);
    const float *ai = a + i * row_step;
    float *ci = c + i * ldc + j;
    switch (m - i) {
      case 5: micro_kernel<5, kAccumulate, kATrans>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 4: micro_kernel<4, kAccumulate, kATrans>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 3: micro_kernel<3, kAccumulate, kATrans>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 2: micro_kernel<2, kAccumulate, kATrans>(k, ai, lda, b + j, ldb, ci, ldc); break;
      case 1: micro_kernel<1, kAccumulate, kATrans>(k, ai, lda, b + j, ldb, ci, ldc); break;
      default: break;
    }
  }
}

// Keys per tile: a multiple of 16 (the micro-kernel width) and of 8 (the softmax vectors).
constexpr int kBN = 64;

// Converts rows [k0, k0 + nk) of one head (row r at base + r*stride) into a dense fp32 tile
// [kBN][D], zero rows up to kBN. Explicit 8-float vectors: a plain element loop is turned into a
// `rep movs` memcpy for fp32, which measured ~10x slower here.
template <class T, int D>
RELAT_INLINE void load_rows(const T *base, int64_t stride, int64_t k0, int nk, float *dst) {
  for (int j = 0; j < nk; ++j) {
    const T *src = base + (k0 + j) * stride;
    float *d = dst + j * D;
    for (int c = 0; c < D; c += 8) {
      v8f x;
      for (int u = 0; u < 8; ++u) x[u] = to_f32(src[c + u]);
      store8(d + c, x);
    }
  }
  for (int j = nk; j < kBN; ++j)
    for (int c = 0; c < D; c += 8) store8(dst + j * D + c, v8f{});
}

// Online-softmax state of up to kMaxRows rows: o (unnormalised, [rows][D]), running max m (log2
// units of the scaled scores) and running sum l.
template <int D, int kMaxRows> struct SoftmaxState {
  alignas(64) float o[kMaxRows * D];
  alignas(32) float m[kMaxRows];
  alignas(32) float l[kMaxRows];
  void reset(int rows) {
    std::fill(o, o + rows * D, 0.f);
    std::fill(m, m + kMaxRows, kNegInf);
    std::fill(l, l + kMaxRows, 0.f);
  }
};

RELAT_INLINE v8i iota8() {
  v8i v;
  for (int i = 0; i < 8; ++i) v[i] = i;
  return v;
}

// Training forward, one key tile, keys-major: S^T = K Q^T on the micro-kernels (Q^T built once
// per task, so no tile is ever transposed), online softmax down the columns (8 rows per vector),
// then O += P V reading P^T as a column-major A. qt: [D][R] queries pre-multiplied by
// scale*log2(e), columns >= rows zero; lim[r]: keys of this tile row r sees (<= nk; 0 for padding
// rows). st: [kBN][R] scratch.
template <int D, int R>
RELAT_INLINE void attend_tile_keys_major(const float *qt, int rows, const int *lim,
                                         const float *kf, const float *vf, int nk, float *st,
                                         SoftmaxState<D, R> &state) {
  static_assert(R % 16 == 0, "padded rows");
  gemm<false>(nk, R, D, kf, D, qt, R, st, R);
  alignas(32) float alpha[R];
  for (int r0 = 0; r0 < R; r0 += 8) {
    v8i limv;
    for (int u = 0; u < 8; ++u) limv[u] = lim[r0 + u];
    v8f mx = splat8(kNegInf);
    for (int j = 0; j < nk; ++j) {
      const v8f x = load8(st + j * R + r0);
      const v8f masked = j < limv ? x : splat8(kNegInf);
      mx = masked > mx ? masked : mx;
    }
    const v8f m_old = load8(state.m + r0);
    const v8f m_new = mx > m_old ? mx : m_old;
    const v8f m_use = m_new == kNegInf ? v8f{} : m_new;  // rows that see nothing (padding)
    const v8f a = exp2v(m_old - m_use);                  // m_old = -inf gives 0
    v8f sum = v8f{};
    for (int j = 0; j < nk; ++j) {
      v8f p = exp2v(load8(st + j * R + r0) - m_use);
      p = j < limv ? p : v8f{};
      sum += p;
      store8(st + j * R + r0, p);
    }
    store8(state.l + r0, load8(state.l + r0) * a + sum);
    store8(state.m + r0, m_new);
    store8(alpha + r0, a);
  }
  for (int r = 0; r < rows; ++r) {
    if (alpha[r] == 1.f) continue;
    float *orow = state.o + r * D;
    for (int d = 0; d < D; d += 8) store8(orow + d, load8(orow + d) * alpha[r]);
  }
  gemm<true, true>(rows, D, nk, st, R, vf, D, state.o, D);
}

// Sums of 8 vectors: returns {sum(a[0]), ..., sum(a[7])}.
RELAT_INLINE v8f hsum8x8(const v8f *a) {
  const v8i even = {0, 8, 2, 10, 4, 12, 6, 14}, odd = {1, 9, 3, 11, 5, 13, 7, 15};
  const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
  const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
  v8f x[4];
  for (int i = 0; i < 4; ++i)
    x[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], even) + __builtin_shuffle(a[2 * i], a[2 * i + 1], odd);
  const v8f y0 = __builtin_shuffle(x[0], x[1], lo2) + __builtin_shuffle(x[0], x[1], hi2);
  const v8f y1 = __builtin_shuffle(x[2], x[3], lo2) + __builtin_shuffle(x[2], x[3], hi2);
  return __builtin_shuffle(y0, y1, lo4) + __builtin_shuffle(y0, y1, hi4);
}

// Decode, one key tile, rows-major for a handful of rows (the g query heads of a KV head): the
// scores are dot products of each K row with each query (8 keys at a time, reduced by
// hsum8x8), which needs neither a transposed tile nor rows padded to 16; then the online softmax
// along each row and O += P V on the micro-kernels. qf: [rows][D] pre-scaled; every row sees the
// first nk keys; s: [rows][kBN] scratch; kf, vf: [kBN][D] zero-padded.
// The running state of row r lives at o + r*ldo (D floats), m[r*ls] and l[r*ls], so it can sit
// in the caller's workspace.
template <int D>
RELAT_INLINE void attend_tile_rows(const float *qf, int rows, const float *kf, const float *vf,
                                   int nk, float *s, float *o, int64_t ldo, float *m, float *l,
                                   int64_t ls) {
  const v8i iota = iota8();
  for (int r = 0; r < rows; ++r) {
    const float *q = qf + r * D;
    float *sr = s + r * kBN;
    for (int j0 = 0; j0 < nk; j0 += 8) {
      v8f acc[8] = {};
      for (int d = 0; d < D; d += 8) {
        const v8f qv = load8(q + d);
        for (int u = 0; u < 8; ++u) acc[u] += load8(kf + (j0 + u) * D + d) * qv;
      }
      store8(sr + j0, hsum8x8(acc));
    }
    v8f mx = splat8(kNegInf);
    for (int j = 0; j < nk; j += 8) {
      const v8f x = (iota + j) < nk ? load8(sr + j) : splat8(kNegInf);
      mx = x > mx ? x : mx;
    }
    const float m_old = m[r * ls];
    const float m_new = std::max(m_old, hmax8(mx));  // finite: nk >= 1
    const float alpha = exp2s(m_old - m_new);
    v8f sum = v8f{};
    for (int j = 0; j < nk; j += 8) {
      v8f p = exp2v(load8(sr + j) - m_new);
      p = (iota + j) < nk ? p : v8f{};
      sum += p;
      store8(sr + j, p);
    }
    l[r * ls] = l[r * ls] * alpha + hsum8(sum);
    m[r * ls] = m_new;
    if (alpha != 1.f) {
      float *orow = o + r * ldo;
      for (int d = 0; d < D; d += 8) store8(orow + d, load8(orow + d) * alpha);
    }
  }
  gemm<true>(rows, D, nk, s, kBN, vf, D, o, ldo);
}

}  // namespace relat::cpu::attn
