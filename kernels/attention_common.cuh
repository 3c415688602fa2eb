// Device helpers shared by kernels/attention.cu and kernels/decode_attention.cu: vector loads and
// stores of a few elements with conversion to/from fp32, and fp32 tile loads into shared memory.
// Callers guarantee the alignment (validate.h requires 16-byte aligned tensors and row strides
// that are multiples of 8 elements).
#pragma once

#include "cuda_common.cuh"

namespace relat::cuda::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Vector loads and stores of N consecutive elements (N * sizeof(T) in {4, 8, 16} bytes, aligned
// to that) with conversion to/from fp32. The raw words are unpacked with bit operations rather
// than through a pointer to a local, which would put the vector in local memory.
template <int kWords> struct Words;
template <> struct Words<1> {
  unsigned int w0;
  __device__ __forceinline__ unsigned int get(int) const { return w0; }
  __device__ __forceinline__ void set(int, unsigned int v) { w0 = v; }
};
template <> struct Words<2> {
  uint2 w;
  __device__ __forceinline__ unsigned int get(int i) const { return i == 0 ? w.x : w.y; }
  __device__ __forceinline__ void set(int i, unsigned int v) { (i == 0 ? w.x : w.y) = v; }
};
template <> struct Words<4> {
  uint4 w;
  __device__ __forceinline__ unsigned int get(int i) const {
    return i == 0 ? w.x : i == 1 ? w.y : i == 2 ? w.z : w.w;
  }
  __device__ __forceinline__ void set(int i, unsigned int v) {
    (i == 0 ? w.x : i == 1 ? w.y : i == 2 ? w.z : w.w) = v;
  }
};

__device__ __forceinline__ float half_bits_to_f32(unsigned short b, __nv_bfloat16 *) {
  return __uint_as_float(unsigned(b) << 16);
}
__device__ __forceinline__ float half_bits_to_f32(unsigned short b, __half *) {
  return __half2float(__ushort_as_half(b));
}
__device__ __forceinline__ unsigned short f32_to_half_bits(float f, __nv_bfloat16 *) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
__device__ __forceinline__ unsigned short f32_to_half_bits(float f, __half *) {
  return __half_as_ushort(__float2half_rn(f));
}

template <class T, int N>
__device__ __forceinline__ void load_vec(const T *src, float (&dst)[N]) {
  constexpr int kW = N * int(sizeof(T)) / 4;
  Words<kW> raw;
  if constexpr (kW == 1) raw.w0 = *reinterpret_cast<const unsigned int *>(src);
  else if constexpr (kW == 2) raw.w = *reinterpret_cast<const uint2 *>(src);
  else raw.w = *reinterpret_cast<const uint4 *>(src);
#pragma unroll
  for (int i = 0; i < kW; ++i) {
    const unsigned int w = raw.get(i);
    if constexpr (sizeof(T) == 4) {
      dst[i] = __uint_as_float(w);
    } else {
      dst[2 * i] = half_bits_to_f32((unsigned short)(w & 0xffffu), static_cast<T *>(nullptr));
      dst[2 * i + 1] = half_bits_to_f32((unsigned short)(w >> 16), static_cast<T *>(nullptr));
    }
  }
}

template <class T, int N>
__device__ __forceinline__ void store_vec(T *dst, const float (&src)[N]) {
  constexpr int kW = N * int(sizeof(T)) / 4;
  Words<kW> raw;
#pragma unroll
  for (int i = 0; i < kW; ++i) {
    if constexpr (sizeof(T) == 4) {
      raw.set(i, __float_as_uint(src[i]));
    } else {
      const unsigned int lo = f32_to_half_bits(src[2 * i], static_cast<T *>(nullptr));
      const unsigned int hi = f32_to_half_bits(src[2 * i + 1], static_cast<T *>(nullptr));
      raw.set(i, lo | (hi << 16));
    }
  }
  if constexpr (kW == 1) *reinterpret_cast<unsigned int *>(dst) = raw.w0;
  else if constexpr (kW == 2) *reinterpret_cast<uint2 *>(dst) = raw.w;
  else *reinterpret_cast<uint4 *>(dst) = raw.w;
}

__device__ __forceinline__ float4 lds4(const float *p) { return *reinterpret_cast<const float4 *>(p); }

__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}

__device__ __forceinline__ void axpy4(float a, float4 x, float (&y)[4]) {
  y[0] = fmaf(a, x.x, y[0]);
  y[1] = fmaf(a, x.y, y[1]);
  y[2] = fmaf(a, x.z, y[2]);
  y[3] = fmaf(a, x.w, y[3]);
}

__device__ __forceinline__ float warp_max_lanes8(float v) {  // max over the 8 lanes sharing lane>>3
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
}

__device__ __forceinline__ float warp_sum_lanes8(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v + __shfl_xor_sync(0xffffffffu, v, 4);
}

// Loads kRows rows of D elements into shared memory as fp32 (row stride ld floats, a multiple of
// 4), multiplied by `mul`. row_ptr(r) gives the global row or nullptr for a zero row. All threads
// of the block take part; the caller synchronises.
template <class T, int D, int kRows, class RowPtr>
__device__ __forceinline__ void load_tile(float *dst, int ld, RowPtr row_ptr, float mul) {
  constexpr int V = 16 / int(sizeof(T));  // elements per 16-byte access
  constexpr int kChunks = D / V;
  for (int i = threadIdx.x; i < kRows * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = (i % kChunks) * V;
    const T *src = row_ptr(r);
    float vals[V];
    if (src) {
      load_vec<T, V>(src + c, vals);
    } else {
#pragma unroll
      for (int u = 0; u < V; ++u) vals[u] = 0.f;
    }
    float *d = dst + r * ld + c;
#pragma unroll
    for (int u = 0; u < V; u += 4)
      *reinterpret_cast<float4 *>(d + u) =
          make_float4(vals[u] * mul, vals[u + 1] * mul, vals[u + 2] * mul, vals[u + 3] * mul);
  }
}

}  // namespace relat::cuda::attn
