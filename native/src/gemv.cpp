// Few-row linear (GEMV), forward y = x w^T and backward y = dy w: CPU twin of kernels/gemv.cu.
//
// A single-token pass (decode, a latent step, a step of the backward through the latent chain)
// reads every weight once to produce one row: weight-streaming, so the time floor is the weight
// bytes over memory bandwidth, and what matters is reading w once, on every core, in long runs.
// forward: the threads split w's rows in blocks of 4; a block (4 rows of k, 4*k*S bytes) comes
// from memory once and stays in L1/L2 while each x row meets it, so w is streamed once for all
// rows, four dot products per pass over x. bf16 weights on a CPU with AVX512_BF16 take a
// vdpbf16ps loop instead (RELAT_NO_BF16_DOT=1 in the environment turns it off, for A/B timings).
// backward: the threads split w's rows in contiguous bands, each read as one sequential stream four
// rows at a time into the thread's own [rows, k] fp32 sums (L1/L2 at these widths); the threads'
// sums are then added in a fixed order.
// Floors (S = sizeof(storage)): bytes n*k*S + rows*(n + k)*S, FLOPs 2*rows*n*k. At rows <= 8 the
// arithmetic intensity is at most 8 FLOPs per weight: bandwidth-bound on every CPU.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "cpu_common.h"
#include "validate.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace relat::cpu {
namespace {

constexpr int64_t kRowBlock = 4;

template <class T>
RELAT_VECTOR_CLONES void gemv_forward_block(const T *x, const T *w, T *y, int64_t rows, int64_t n,
                                            int64_t k, int64_t j0) {
  const T *w0 = w + j0 * k;
  if (n - j0 >= kRowBlock) {
    const T *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = x + r * k;
      float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
      for (int64_t c = 0; c < k; ++c) {
        const float xv = to_f32(xr[c]);
        a0 += xv * to_f32(w0[c]);
        a1 += xv * to_f32(w1[c]);
        a2 += xv * to_f32(w2[c]);
        a3 += xv * to_f32(w3[c]);
      }
      T *yr = y + r * n + j0;
      yr[0] = from_f32<T>(a0);
      yr[1] = from_f32<T>(a1);
      yr[2] = from_f32<T>(a2);
      yr[3] = from_f32<T>(a3);
    }
    return;
  }
  for (int64_t j = j0; j < n; ++j) {
    const T *wj = w + j * k;
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = x + r * k;
      float a = 0.f;
#pragma omp simd reduction(+ : a)
      for (int64_t c = 0; c < k; ++c) a += to_f32(xr[c]) * to_f32(wj[c]);
      y[r * n + j] = from_f32<T>(a);
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
// bf16 forward on CPUs with AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs exactly and adds them
// into 16 fp32 lanes, so a 64-byte line of weights costs one instruction instead of a widening
// conversion per element, which held the portable loop to about half the bandwidth floor. Inputs
// that are fp32 denormals as bf16 count as zero (the instruction's rule); sums are fp32 as above.
#define RELAT_GEMV_BF16_DOT 1
#define RELAT_BF16DOT __attribute__((target("avx512f,avx512bw,avx512bf16")))

// The 16 lanes summed by halving (a fixed order, so the result does not depend on the schedule).
// The all-ones masked forms: GCC 12 warns that the unmasked ones read an undefined register.
RELAT_BF16DOT inline float lane_sum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, 0xb1));
  return _mm512_cvtss_f32(v);
}

// Weight rows [j0, j1) against R x rows: each weight row is read once, in address order (one
// sequential stream per thread for the prefetchers), and meets every x row (in L1) while it is in
// registers; U independent sums per x row keep the dot-product latency off the critical path.
template <int R>
RELAT_BF16DOT void bf16dot_rows(const bf16 *x, const bf16 *w, bf16 *y, int64_t n, int64_t k, int64_t j0,
                                int64_t j1) {
  constexpr int U = R >= 4 ? 1 : 4 / R;
  const int64_t full = k / 32 * 32, unrolled = k / (32 * U) * (32 * U);
  const __mmask32 tail = k == full ? 0 : __mmask32((1u << (k - full)) - 1u);
  for (int64_t j = j0; j < j1; ++j) {
    const bf16 *wj = w + j * k;
    __m512 acc[R][U];
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
    for (int64_t c = 0; c < unrolled; c += 32 * U)
      for (int u = 0; u < U; ++u) {
        const __m512bh wv = (__m512bh)_mm512_loadu_si512(wj + c + 32 * u);
        for (int r = 0; r < R; ++r)
          acc[r][u] = _mm512_dpbf16_ps(acc[r][u], (__m512bh)_mm512_loadu_si512(x + r * k + c + 32 * u), wv);
      }
    for (int64_t c = unrolled; c < full; c += 32) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wj + c);
      for (int r = 0; r < R; ++r)
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_loadu_si512(x + r * k + c), wv);
    }
    if (tail) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(tail, wj + full);
      for (int r = 0; r < R; ++r)
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_maskz_loadu_epi16(tail, x + r * k + full), wv);
    }
    for (int r = 0; r < R; ++r) {
      __m512 sum = acc[r][0];
      for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[r][u]);
      y[r * n + j] = from_f32<bf16>(lane_sum(sum));
    }
  }
}

void gemv_forward_block_bf16dot(const bf16 *x, const bf16 *w, bf16 *y, int64_t rows, int64_t n,
                                int64_t k, int64_t j0) {
  const int64_t j1 = std::min(n, j0 + kRowBlock);
  switch (rows) {
    case 1: return bf16dot_rows<1>(x, w, y, n, k, j0, j1);
    case 2: return bf16dot_rows<2>(x, w, y, n, k, j0, j1);
    case 3: return bf16dot_rows<3>(x, w, y, n, k, j0, j1);
    case 4: return bf16dot_rows<4>(x, w, y, n, k, j0, j1);
    case 5: return bf16dot_rows<5>(x, w, y, n, k, j0, j1);
    case 6: return bf16dot_rows<6>(x, w, y, n, k, j0, j1);
    case 7: return bf16dot_rows<7>(x, w, y, n, k, j0, j1);
    default: return bf16dot_rows<8>(x, w, y, n, k, j0, j1);
  }
}
#endif

// sums[r, :] += sum over j in [j0, j1) of x[r, j] * w[j, :], four rows of w per pass over sums.
template <class T>
RELAT_VECTOR_CLONES void gemv_backward_rows(const T *x, const T *w, float *sums, int64_t rows,
                                            int64_t n, int64_t k, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + kRowBlock <= j1; j += kRowBlock) {
    const T *w0 = w + j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = x + r * n + j;
      const float x0 = to_f32(xr[0]), x1 = to_f32(xr[1]), x2 = to_f32(xr[2]), x3 = to_f32(xr[3]);
      float *sr = sums + r * k;
#pragma omp simd
      for (int64_t c = 0; c < k; ++c)
        sr[c] += x0 * to_f32(w0[c]) + x1 * to_f32(w1[c]) + x2 * to_f32(w2[c]) + x3 * to_f32(w3[c]);
    }
  }
  for (; j < j1; ++j) {
    const T *wj = w + j * k;
    for (int64_t r = 0; r < rows; ++r) {
      const float xv = to_f32(x[r * n + j]);
      float *sr = sums + r * k;
#pragma omp simd
      for (int64_t c = 0; c < k; ++c) sr[c] += xv * to_f32(wj[c]);
    }
  }
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_gemv_forward(const void *x, const void *w, void *y, int64_t rows,
                                               int64_t n, int64_t k, relat_dtype dtype,
                                               relat_stream) {
  if (auto m = relat::validate::gemv("gemv_forward", x, w, y, rows, n, k, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "gemv_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *ws = static_cast<const T *>(w);
    T *ys = static_cast<T *>(y);
    // Dynamic chunks, not a static half each: a worker woken from its sleep (OMP_WAIT_POLICY=
    // PASSIVE) starts tens of microseconds late, and the caller's thread streams on meanwhile
    // instead of waiting for it at the end. Each output is still one block's sum: the result does
    // not depend on the schedule. A chunk of 1/64 of the weight is long enough for the prefetchers.
    const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
    const int64_t chunk = std::max<int64_t>(1, blocks / 64);
#ifdef RELAT_GEMV_BF16_DOT
    if constexpr (std::is_same_v<T, bf16>) {
      static const bool dot = __builtin_cpu_supports("avx512bf16") && !std::getenv("RELAT_NO_BF16_DOT");
      if (dot) {
#pragma omp parallel for schedule(dynamic, chunk) if (n * k >= kParallelMinElements)
        for (int64_t b = 0; b < blocks; ++b) gemv_forward_block_bf16dot(xs, ws, ys, rows, n, k, b * kRowBlock);
        return RELAT_OK;
      }
    }
#endif
#pragma omp parallel for schedule(dynamic, chunk) if (n * k >= kParallelMinElements)
    for (int64_t b = 0; b < blocks; ++b) gemv_forward_block(xs, ws, ys, rows, n, k, b * kRowBlock);
    return RELAT_OK;
  });
}

extern "C" relat_status relat_cpu_gemv_backward(const void *x, const void *w, void *y, int64_t rows,
                                                int64_t n, int64_t k, relat_dtype dtype,
                                                relat_stream) {
  if (auto m = relat::validate::gemv("gemv_backward", x, w, y, rows, n, k, dtype); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  return dispatch_dtype(dtype, "gemv_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xs = static_cast<const T *>(x);
    const T *ws = static_cast<const T *>(w);
    T *ys = static_cast<T *>(y);
    // Each thread owns a contiguous band of w's rows (one sequential stream) and sums into its own
    // [rows, k] fp32 partial; the partials are then added in a fixed order, column bands split
    // over the threads. The partials live in a buffer kept per calling thread: no allocation (and
    // no fresh pages) once it has grown to the largest [threads, rows, k] seen.
    const bool parallel = n * k >= kParallelMinElements;
    const int threads = parallel ? omp_get_max_threads() : 1;
    static thread_local std::vector<float> partials;
    const size_t need = size_t(threads) * size_t(rows * k);
    if (partials.size() < need) partials.resize(need);
    float *base = partials.data();
#pragma omp parallel num_threads(threads) if (parallel)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
      const int64_t j0 = std::min(n, blocks * t / nt * kRowBlock);
      const int64_t j1 = std::min(n, blocks * (t + 1) / nt * kRowBlock);
      float *mine = base + size_t(t) * size_t(rows * k);
      std::fill(mine, mine + rows * k, 0.f);
      gemv_backward_rows(xs, ws, mine, rows, n, k, j0, j1);
#pragma omp barrier
      const int64_t c0 = k * t / nt, c1 = k * (t + 1) / nt;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          float sum = 0.f;
          for (int q = 0; q < nt; ++q)
            sum += base[size_t(q) * size_t(rows * k) + size_t(r * k + c)];
          ys[r * k + c] = from_f32<T>(sum);
        }
    }
    return RELAT_OK;
  });
}
