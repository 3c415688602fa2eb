// RoPE forward and backward on CUDA, q and k in one launch. CPU twin: native/src/rope.cpp.
// Fused: angle = position * inv_freq, its cos/sin (native/common/rope_math.h: double-precision
// range reduction and polynomials, bit-identical to the CPU twin's), and the rotate-half rotation
// of every q and k head of a token. One block per token: threadIdx.x owns VEC consecutive pairs
// (i, i + D/2) and computes their cos/sin once in registers; threadIdx.y walks the q_heads +
// kv_heads heads, so the cos/sin are shared by all heads and no cos/sin table ever touches global
// memory. Backward = forward with sin negated. Loads and stores are 16-byte vectors when the
// layout allows (VEC = 16/sizeof(T)).
// Floor: bytes = tokens*(q_heads+kv_heads)*head_dim*2*sizeof(T) + tokens*8 + head_dim*2 (inv_freq);
//        FLOPs ~ 3 per element + ~30 fp64 per (token, pair, head slot) for cos/sin: bandwidth-bound
//        on sm_80/sm_90 (full-rate fp64).
//        Qwen3-8B, 512 tokens, bf16: 40 heads * 128 * 2 * 2 B * 512 = 10.5 MB -> ~2.2 us at 4.8 TB/s.
#include <cstdint>

#include "cuda_common.cuh"
#include "rope_math.h"
#include "validate.h"

namespace relat::cuda {
namespace {

template <class T, int VEC> struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

template <class T, int VEC>
__global__ void rope_kernel(const T *q, const T *k, T *q_out, T *k_out,
                            const int64_t *__restrict__ positions,
                            const float *__restrict__ inv_freq, int q_heads, int kv_heads,
                            int half, int64_t ldq, int64_t ldk, float sign) {
  const int64_t t = blockIdx.x;
  const int i0 = threadIdx.x * VEC;
  if (i0 >= half) return;
  const float p = float(__ldg(positions + t));
  float c[VEC], s[VEC];
#pragma unroll
  for (int v = 0; v < VEC; ++v) {
    float sn, cs;
    relat::rope_math::sincos_angle(p * __ldg(inv_freq + i0 + v), &sn, &cs);
    c[v] = cs;
    s[v] = sign * sn;
  }
  const int head_dim = 2 * half;
  for (int h = threadIdx.y; h < q_heads + kv_heads; h += blockDim.y) {
    const T *x;
    T *out;
    if (h < q_heads) {
      x = q + t * ldq + int64_t(h) * head_dim;
      out = q_out + t * ldq + int64_t(h) * head_dim;
    } else {
      x = k + t * ldk + int64_t(h - q_heads) * head_dim;
      out = k_out + t * ldk + int64_t(h - q_heads) * head_dim;
    }
    const Pack<T, VEC> a = *reinterpret_cast<const Pack<T, VEC> *>(x + i0);
    const Pack<T, VEC> b = *reinterpret_cast<const Pack<T, VEC> *>(x + i0 + half);
    Pack<T, VEC> oa, ob;
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      const float x1 = to_f32(a.v[v]), x2 = to_f32(b.v[v]);
      oa.v[v] = from_f32<T>(x1 * c[v] - x2 * s[v]);
      ob.v[v] = from_f32<T>(x2 * c[v] + x1 * s[v]);
    }
    *reinterpret_cast<Pack<T, VEC> *>(out + i0) = oa;
    *reinterpret_cast<Pack<T, VEC> *>(out + i0 + half) = ob;
  }
}

bool aligned(const void *p, int64_t bytes) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % uintptr_t(bytes) == 0;
}

template <class T, int VEC>
relat_status launch(const char *op, const void *q, const void *k, void *q_out, void *k_out,
                    const int64_t *positions, const float *inv_freq, int64_t tokens, int q_heads,
                    int kv_heads, int half, int64_t ldq, int64_t ldk, float sign,
                    relat_stream stream) {
  const int tx = (half + VEC - 1) / VEC;
  // About 256 threads per block: the rest of the block walks further heads.
  int ty = 256 / tx;
  if (ty < 1) ty = 1;
  if (ty > q_heads + kv_heads) ty = q_heads + kv_heads;
  RELAT_LAUNCH(unsigned(tokens), dim3(tx, ty), 0, stream, rope_kernel<T, VEC>)(
      static_cast<const T *>(q), static_cast<const T *>(k), static_cast<T *>(q_out),
      static_cast<T *>(k_out), positions, inv_freq, q_heads, kv_heads, half, ldq, ldk, sign);
  return check_launch(op);
}

relat_status rope(const char *op, const void *q, const void *k, void *q_out, void *k_out,
                  const int64_t *positions, const float *inv_freq, int64_t tokens,
                  int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t ldq, int64_t ldk,
                  relat_dtype dtype, float sign, relat_stream stream) {
  if (auto m = relat::validate::rope(op, q, k, q_out, k_out, positions, inv_freq, tokens, q_heads,
                                     kv_heads, head_dim, ldq, ldk, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tokens == 0 || q_heads + kv_heads == 0) return RELAT_OK;
  if (tokens > 0x7fffffff || q_heads + kv_heads > 0x7fffffff)
    return fail(RELAT_ERR_UNSUPPORTED, "%s: more than 2^31-1 tokens or heads", op);
  if (kv_heads == 0) k = k_out = nullptr;
  const int half = int(head_dim / 2);
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int kWide = 16 / sizeof(T);
    // A VEC-wide access is aligned when every base pointer, token stride and half offset is.
    auto fits = [&](int vec) {
      const int64_t bytes = int64_t(sizeof(T)) * vec;
      return half % vec == 0 && aligned(q, bytes) && aligned(q_out, bytes) && aligned(k, bytes) &&
             aligned(k_out, bytes) && (ldq * int64_t(sizeof(T))) % bytes == 0 &&
             (kv_heads == 0 || (ldk * int64_t(sizeof(T))) % bytes == 0);
    };
    const int qh = int(q_heads), kh = int(kv_heads);
    if (fits(kWide))
      return launch<T, kWide>(op, q, k, q_out, k_out, positions, inv_freq, tokens, qh, kh, half,
                              ldq, ldk, sign, stream);
    if (fits(2))
      return launch<T, 2>(op, q, k, q_out, k_out, positions, inv_freq, tokens, qh, kh, half, ldq,
                          ldk, sign, stream);
    return launch<T, 1>(op, q, k, q_out, k_out, positions, inv_freq, tokens, qh, kh, half, ldq,
                        ldk, sign, stream);
  });
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_rope_forward(const void *q, const void *k, void *q_out,
                                                void *k_out, const int64_t *positions,
                                                const float *inv_freq, int64_t tokens,
                                                int64_t q_heads, int64_t kv_heads,
                                                int64_t head_dim, int64_t ldq, int64_t ldk,
                                                relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("rope_forward", stream);
  return rope("rope_forward", q, k, q_out, k_out, positions, inv_freq, tokens, q_heads, kv_heads,
              head_dim, ldq, ldk, dtype, 1.f, stream);
}

extern "C" relat_status relat_cuda_rope_backward(const void *dq, const void *dk, void *dq_in,
                                                 void *dk_in, const int64_t *positions,
                                                 const float *inv_freq, int64_t tokens,
                                                 int64_t q_heads, int64_t kv_heads,
                                                 int64_t head_dim, int64_t ldq, int64_t ldk,
                                                 relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("rope_backward", stream);
  return rope("rope_backward", dq, dk, dq_in, dk_in, positions, inv_freq, tokens, q_heads,
              kv_heads, head_dim, ldq, ldk, dtype, -1.f, stream);
}
