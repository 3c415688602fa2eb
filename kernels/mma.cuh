// Warp-level tensor-core tile product for bf16/fp16 with fp32 accumulation: mma.sync m16n8k16.
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4, t = lane % 4:
//   A (16x16, row-major): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..2t+1], a2 = A[g][2t+8..2t+9],
//                         a3 = A[g+8][2t+8..2t+9]
//   B (16x8, "col"):      b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//   C (16x8, fp32):       c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1]
// Each 32-bit register holds two 16-bit values, the lower index in the low half.
// Under the CUDA-on-CPU emulation (RELAT_CUDA_EMULATION) inline PTX does not exist: the same
// product is computed from the same fragments, each lane reading the registers of the lanes that
// hold its operands, so the emulated tests still check every fragment index the real kernel uses.
#pragma once

#include <type_traits>

#include "cuda_common.cuh"

namespace relat::cuda {

template <class T> struct MmaType;
template <> struct MmaType<__nv_bfloat16> {
  static __device__ __forceinline__ float lo(uint32_t v) {
    return __uint_as_float(v << 16);
  }
  static __device__ __forceinline__ float hi(uint32_t v) {
    return __uint_as_float(v & 0xffff0000u);
  }
};
template <> struct MmaType<__half> {
  static __device__ __forceinline__ float lo(uint32_t v) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu)));
  }
  static __device__ __forceinline__ float hi(uint32_t v) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16)));
  }
};

// c[0..3] += A (16x16) * B (16x8) for one warp; every lane passes its own fragments.
template <class T>
__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#ifndef RELAT_CUDA_EMULATION
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  // Every lane publishes its fragments in a per-warp scratch, then computes its four outputs from
  // the fragment registers of the lanes that hold them (two warp barriers per product, rather than
  // a shuffle per element, keep the emulated run fast).
  static __shared__ uint32_t frag[32][32][6];
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5, g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) frag[warp][lane][i] = a[i];
  frag[warp][lane][4] = b[0];
  frag[warp][lane][5] = b[1];
  __syncwarp();
  for (int k = 0; k < 16; ++k) {
    const int half = k & 1, hi_k = k >> 3, pair = (k & 7) >> 1;
    // A[g][k], A[g+8][k]: lane g*4 + pair, registers a[2*hi_k], a[2*hi_k + 1].
    const uint32_t ar = frag[warp][g * 4 + pair][2 * hi_k];
    const uint32_t ar8 = frag[warp][g * 4 + pair][2 * hi_k + 1];
    // B[k][n] for n = 2t, 2t + 1: lane n*4 + pair, register b[hi_k].
    const uint32_t b0 = frag[warp][(2 * t) * 4 + pair][4 + hi_k];
    const uint32_t b1 = frag[warp][(2 * t + 1) * 4 + pair][4 + hi_k];
    auto el = [&](uint32_t v) { return half ? MmaType<T>::hi(v) : MmaType<T>::lo(v); };
    const float x = el(ar), x8 = el(ar8), y0 = el(b0), y1 = el(b1);
    c[0] += x * y0;
    c[1] += x * y1;
    c[2] += x8 * y0;
    c[3] += x8 * y1;
  }
  __syncwarp();  // the scratch is rewritten by the next product
#endif
}

__device__ __forceinline__ uint32_t pack_halves(unsigned short lo, unsigned short hi) {
  return uint32_t(lo) | (uint32_t(hi) << 16);
}

}  // namespace relat::cuda
