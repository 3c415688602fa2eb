// CTA-level GEMM tile engines for the fused kernels: a block of 256 threads multiplies a BM x BK
// tile of A by a BK x BN tile of B, both staged in shared memory, and keeps the BM x BN fp32
// accumulators in registers. The kernels that use them (linear_cross_entropy.cu) choose where the
// operands come from and what the epilogue does; the engines only know tile geometry.
//
//  - MmaEngine<T> (T = bf16 or fp16): 128 x 128 x 32 tiles, 8 warps as 2 x 4, warp tile 64 x 32 of
//    mma.sync m16n8k16 (mma.cuh). Both operands sit K-contiguous in shared memory with rows padded to
//    40 halves (20 words), which makes every fragment a conflict-free 32-bit load. An operand that
//    is N-contiguous in global memory (B = [K][N]) is transposed while it is staged: each thread
//    loads two K rows and stores packed (k, k+1) pairs, the layout of the mma B fragment.
//    Shared memory 20 KiB; global loads are 16-byte vectors when rows are 16-byte aligned.
//  - SimtEngine (fp32): 64 x 64 x 16 tiles, 4 x 4 outputs per thread from k-major shared tiles;
//    exact fp32 FMAs (tensor-core TF32 would not meet the fp32 tolerance).
// Staging is register double-buffered: the next tile is loaded into registers while the current one
// is multiplied, then stored after a barrier.
#pragma once

#include <cstring>

#include "cuda_common.cuh"
#include "mma.cuh"

namespace relat::cuda {

constexpr int kGemmThreads = 256;

// Loads `n` consecutive elements (n = 8 halves or 4 floats) of a row from element k, zero past
// kend or when the row is absent; one 16-byte load when `vec` (row and k 16-byte aligned) and the
// group is whole.
template <class T, class Raw>
__device__ __forceinline__ Raw load_group(const T *row, int64_t k, int64_t kend, bool vec) {
  constexpr int n = int(sizeof(Raw) / sizeof(T));
  Raw r;
  if (row != nullptr && vec && k + n <= kend) {
    r = *reinterpret_cast<const Raw *>(row + k);
  } else {
    T tmp[n];
#pragma unroll
    for (int i = 0; i < n; ++i) {
      if (row != nullptr && k + i < kend) {
        tmp[i] = row[k + i];
      } else {
        tmp[i] = from_f32<T>(0.f);
      }
    }
    memcpy(&r, tmp, sizeof r);
  }
  return r;
}

template <class T> struct MmaEngine {
  static constexpr int BM = 128, BN = 128, BK = 32, LDS = BK + 8;
  static constexpr int kASlots = 2;  // K-contiguous operand groups of 8 per thread
  struct alignas(16) Smem {  // 16-byte vector stores
    T a[BM * LDS];
    T b[BN * LDS];
  };
  float acc[4][4][4];
  uint4 ra[2], rb[2];

  // Geometry of staging slot s of a K-contiguous operand: tile row and k offset.
  static __device__ __forceinline__ int row_of(int s) { return (int(threadIdx.x) + 256 * s) >> 2; }
  static __device__ __forceinline__ int k_of(int s) { return ((int(threadIdx.x) + 256 * s) & 3) * 8; }
  // N-contiguous B: this thread's k pair and n offset.
  static __device__ __forceinline__ int bn_kpair() { return int(threadIdx.x) & 15; }
  static __device__ __forceinline__ int bn_n() { return (int(threadIdx.x) >> 4) * 8; }

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
  }

  // A (or B) rows are K-contiguous: rows[s] is the row of slot s (null if absent), k0 the tile's k.
  __device__ __forceinline__ void load_a(const T *const rows[2], int64_t k0, int64_t kend, bool vec) {
#pragma unroll
    for (int s = 0; s < 2; ++s) ra[s] = load_group<T, uint4>(rows[s], k0 + k_of(s), kend, vec);
  }
  __device__ __forceinline__ void load_bk(const T *const rows[2], int64_t k0, int64_t kend, bool vec) {
#pragma unroll
    for (int s = 0; s < 2; ++s) rb[s] = load_group<T, uint4>(rows[s], k0 + k_of(s), kend, vec);
  }
  // B is [K][N], N-contiguous: r0, r1 are the rows k and k + 1 of this thread (null if absent),
  // already offset to the tile's first column n0; nend = columns left in the row from n0.
  __device__ __forceinline__ void load_bn(const T *r0, const T *r1, int64_t nend, bool vec) {
    rb[0] = load_group<T, uint4>(r0, bn_n(), nend, vec);
    rb[1] = load_group<T, uint4>(r1, bn_n(), nend, vec);
  }

  __device__ __forceinline__ void store_a(Smem &sm) const {
#pragma unroll
    for (int s = 0; s < 2; ++s) *reinterpret_cast<uint4 *>(&sm.a[row_of(s) * LDS + k_of(s)]) = ra[s];
  }
  __device__ __forceinline__ void store_bk(Smem &sm) const {
#pragma unroll
    for (int s = 0; s < 2; ++s) *reinterpret_cast<uint4 *>(&sm.b[row_of(s) * LDS + k_of(s)]) = rb[s];
  }
  __device__ __forceinline__ void store_bn(Smem &sm) const {
    unsigned short lo[8], hi[8];
    memcpy(lo, &rb[0], 16);
    memcpy(hi, &rb[1], 16);
    uint32_t *b32 = reinterpret_cast<uint32_t *>(sm.b);
#pragma unroll
    for (int i = 0; i < 8; ++i) b32[(bn_n() + i) * (LDS / 2) + bn_kpair()] = pack_halves(lo[i], hi[i]);
  }

  __device__ __forceinline__ void compute(const Smem &sm) {
    const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
    const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const T *p = &sm.a[(wm + mi * 16 + g) * LDS + kk + 2 * t];
        a[mi][0] = *reinterpret_cast<const uint32_t *>(p);
        a[mi][1] = *reinterpret_cast<const uint32_t *>(p + 8 * LDS);
        a[mi][2] = *reinterpret_cast<const uint32_t *>(p + 8);
        a[mi][3] = *reinterpret_cast<const uint32_t *>(p + 8 * LDS + 8);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const T *p = &sm.b[(wn + ni * 8 + g) * LDS + kk + 2 * t];
        b[ni][0] = *reinterpret_cast<const uint32_t *>(p);
        b[ni][1] = *reinterpret_cast<const uint32_t *>(p + 8);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_16816<T>(acc[mi][ni], a[mi], b[ni]);
    }
  }

  // Calls fn(row, col, value) for every accumulator (tile coordinates).
  template <class Fn> __device__ __forceinline__ void for_each(Fn &&fn) const {
    const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
    const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int r = wm + mi * 16 + g, c = wn + ni * 8 + 2 * t;
        fn(r, c, acc[mi][ni][0]);
        fn(r, c + 1, acc[mi][ni][1]);
        fn(r + 8, c, acc[mi][ni][2]);
        fn(r + 8, c + 1, acc[mi][ni][3]);
      }
  }
};

struct SimtEngine {
  static constexpr int BM = 64, BN = 64, BK = 16, LDA = BM + 4, LDB = BN + 4;
  static constexpr int kASlots = 1;
  struct alignas(16) Smem {  // 16-byte vector stores
    float a[BK * LDA];  // k-major
    float b[BK * LDB];
  };
  float acc[4][4];
  float4 ra[1], rb[1];

  static __device__ __forceinline__ int row_of(int) { return int(threadIdx.x) >> 2; }
  static __device__ __forceinline__ int k_of(int) { return (int(threadIdx.x) & 3) * 4; }
  static __device__ __forceinline__ int bn_k() { return int(threadIdx.x) >> 4; }
  static __device__ __forceinline__ int bn_n() { return (int(threadIdx.x) & 15) * 4; }

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
  }
  __device__ __forceinline__ void load_a(const float *const rows[1], int64_t k0, int64_t kend, bool vec) {
    ra[0] = load_group<float, float4>(rows[0], k0 + k_of(0), kend, vec);
  }
  __device__ __forceinline__ void load_bk(const float *const rows[1], int64_t k0, int64_t kend, bool vec) {
    rb[0] = load_group<float, float4>(rows[0], k0 + k_of(0), kend, vec);
  }
  // B is [K][N]: r is this thread's row k (null if absent), offset to the tile's first column.
  __device__ __forceinline__ void load_bn(const float *r, int64_t nend, bool vec) {
    rb[0] = load_group<float, float4>(r, bn_n(), nend, vec);
  }
  __device__ __forceinline__ void store_a(Smem &sm) const {
    const int r = row_of(0), k = k_of(0);
    sm.a[(k + 0) * LDA + r] = ra[0].x;
    sm.a[(k + 1) * LDA + r] = ra[0].y;
    sm.a[(k + 2) * LDA + r] = ra[0].z;
    sm.a[(k + 3) * LDA + r] = ra[0].w;
  }
  __device__ __forceinline__ void store_bk(Smem &sm) const {
    const int r = row_of(0), k = k_of(0);
    sm.b[(k + 0) * LDB + r] = rb[0].x;
    sm.b[(k + 1) * LDB + r] = rb[0].y;
    sm.b[(k + 2) * LDB + r] = rb[0].z;
    sm.b[(k + 3) * LDB + r] = rb[0].w;
  }
  __device__ __forceinline__ void store_bn(Smem &sm) const {
    *reinterpret_cast<float4 *>(&sm.b[bn_k() * LDB + bn_n()]) = rb[0];
  }
  __device__ __forceinline__ void compute(const Smem &sm) {
    const int tx = int(threadIdx.x) & 15, ty = int(threadIdx.x) >> 4;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = sm.a[k * LDA + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = sm.b[k * LDB + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }
  template <class Fn> __device__ __forceinline__ void for_each(Fn &&fn) const {
    const int tx = int(threadIdx.x) & 15, ty = int(threadIdx.x) >> 4;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) fn(ty + 16 * i, tx + 16 * j, acc[i][j]);
  }
};

}  // namespace relat::cuda
