// Token sampling (greedy, temperature, top-k, top-p) on CUDA. CPU twin: native/src/sample.cpp.
// Semantics in relat.h; the arithmetic that decides a token (order keys, integer masses, Philox)
// is native/common/sample_math.h, shared with the CPU twin, so both pick the same token.
//
// One block per row, everything in one launch, nothing leaves the block but the chosen id:
//  1. pass over the row: the largest composite key (greedy answer, and max s for the masses); with
//     top-k, also a count histogram of the top 11 key bits;
//  2. without top-k, a second pass: mass and count histograms of the top 11 key bits and the total
//     mass (for top-p, or for the draw when only temperature applies);
//  3. the histogram names the bin where the top-k count / top-p mass / draw target is crossed; when
//     that bin and everything above it holds <= kCandidates tokens (the usual case for real logits),
//     those tokens (key and mass) are compacted into shared memory with one more pass;
//  4. three radix selections (11-bit digits on the composite key, count or integer-mass histograms
//     in shared memory, integer atomics, so the result does not depend on thread timing) find the
//     k-th token, the top-p boundary and the drawn token, over the shared-memory candidates, or over
//     the row in global memory when the candidates did not fit (flat distributions).
// No sort of the vocabulary, no workspace, no host round trip.
// Floor: vocab * sizeof(T) bytes read per row (the passes after the first hit L2). One block per row
//        caps a single row at one SM's L2 bandwidth (~3-5 us per pass over 151,936 fp32 logits on an
//        H100/H200): 2-3 passes with compaction, up to ~12 without it.
#include <cstdint>

#include "cuda_common.cuh"
#include "sample_math.h"
#include "validate.h"

namespace relat::cuda {
namespace {

using namespace relat::sample_math;

constexpr int kThreads = 512;
constexpr int kBinBits = 11;
constexpr int kBins = 1 << kBinBits;
constexpr int kBinsPerThread = kBins / kThreads;
constexpr int kCandidates = 1024;

template <class T> struct Dev;
template <> struct Dev<float> {
  static constexpr int kKeyBits = 32;
  static __device__ __forceinline__ uint32_t raw(const float *x, int64_t j) {
    return __float_as_uint(x[j]);
  }
  static __device__ __forceinline__ uint32_t key(uint32_t r) { return order_key_f32(r); }
  static __device__ __forceinline__ float value(uint32_t r) { return __uint_as_float(r); }
};
template <> struct Dev<__nv_bfloat16> {
  static constexpr int kKeyBits = 16;
  static __device__ __forceinline__ uint32_t raw(const __nv_bfloat16 *x, int64_t j) {
    return reinterpret_cast<const unsigned short *>(x)[j];
  }
  static __device__ __forceinline__ uint32_t key(uint32_t r) { return order_key_bf16(r); }
  static __device__ __forceinline__ float value(uint32_t r) { return __uint_as_float(r << 16); }
};
template <> struct Dev<__half> {
  static constexpr int kKeyBits = 16;
  static __device__ __forceinline__ uint32_t raw(const __half *x, int64_t j) {
    return reinterpret_cast<const unsigned short *>(x)[j];
  }
  static __device__ __forceinline__ uint32_t key(uint32_t r) { return order_key_f16(r); }
  static __device__ __forceinline__ float value(uint32_t r) {
    return __half2float(__ushort_as_half((unsigned short)r));
  }
};

struct Smem {
  unsigned int count[kBins];
  unsigned long long mass[kBins];
  unsigned long long cand_key[kCandidates];
  unsigned long long cand_mass[kCandidates];
  unsigned long long scratch[32];
  unsigned long long found;
  unsigned long long sel_above, sel_measure;
  unsigned int sel_count;
  int sel_bin;
  int n_cand;
};

// ---- block-wide reductions over 64-bit values (blockDim.x == kThreads) ----

__device__ __forceinline__ unsigned long long warp_max_u64(unsigned long long v) {
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned long long w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Every thread gets the maximum. Ends with a barrier: scratch is free again.
__device__ unsigned long long block_max_u64(unsigned long long v, unsigned long long *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max_u64(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = 0;
  for (int w = 0; w < kThreads / 32; ++w) v = scratch[w] > v ? scratch[w] : v;
  __syncthreads();
  return v;
}

__device__ unsigned long long block_sum_u64(unsigned long long v, unsigned long long *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_u64(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = 0;
  for (int w = 0; w < kThreads / 32; ++w) v += scratch[w];
  __syncthreads();
  return v;
}

// Sum of v over the threads with a larger index than this one.
__device__ unsigned long long block_exclusive_suffix_u64(unsigned long long v,
                                                         unsigned long long *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_down_sync(0xffffffffu, x, o);
    if (lane + o < 32) x += y;
  }
  if (lane == 0) scratch[warp] = x;  // the warp's total
  __syncthreads();
  unsigned long long higher = 0;
  for (int w = warp + 1; w < kThreads / 32; ++w) higher += scratch[w];
  __syncthreads();
  return x - v + higher;
}

// The bin where the measure, summed from the highest bin down, first reaches need (>= 1, and at
// most the total). Results in sm.sel_*; ends with a barrier.
template <bool kMass> __device__ void find_bin(Smem &sm, unsigned long long need) {
  const int t = threadIdx.x;
  unsigned long long vals[kBinsPerThread];
  unsigned long long sum = 0;
#pragma unroll
  for (int i = 0; i < kBinsPerThread; ++i) {
    const int b = t * kBinsPerThread + i;
    vals[i] = kMass ? sm.mass[b] : sm.count[b];
    sum += vals[i];
  }
  const unsigned long long above = block_exclusive_suffix_u64(sum, sm.scratch);
  if (above < need && above + sum >= need) {
    unsigned long long cum = above;
#pragma unroll
    for (int i = kBinsPerThread - 1; i >= 0; --i) {
      const int b = t * kBinsPerThread + i;
      if (cum + vals[i] >= need) {
        sm.sel_bin = b;
        sm.sel_above = cum;
        sm.sel_measure = vals[i];
        sm.sel_count = sm.count[b];
        break;
      }
      cum += vals[i];
    }
  }
  __syncthreads();
}

__device__ void clear_bins(Smem &sm, bool with_mass) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    sm.count[b] = 0;
    if (with_mass) sm.mass[b] = 0;
  }
  __syncthreads();
}

// ---- token sources: the row in global memory, or candidates compacted into shared memory ----

template <class T> struct GlobalSource {
  const T *x;
  int n;
  float tau, m;
  __device__ int size() const { return n; }
  __device__ unsigned long long key(int j) const {
    return composite(Dev<T>::key(Dev<T>::raw(x, j)), j);
  }
  __device__ unsigned long long mass_of(int j) const {
    return mass(Dev<T>::value(Dev<T>::raw(x, j)) / tau - m);
  }
};

struct SharedSource {
  const Smem *sm;
  __device__ int size() const { return sm->n_cand; }
  __device__ unsigned long long key(int j) const { return sm->cand_key[j]; }
  __device__ unsigned long long mass_of(int j) const { return sm->cand_mass[j]; }
};

// Radix selection: among tokens with key >= lower, taken largest key first, the token at which the
// cumulative measure (count, or mass when kMass) first reaches target (1 <= target <= the measure of
// those tokens). Returns its key and the cumulative measure including it. Keys have key_bits
// bits; each round decides the next 11 of them. Integer atomics only: deterministic.
struct Selected {
  unsigned long long key, cum;
};

template <bool kMass, class Src>
__device__ Selected select(const Src &src, unsigned long long target, unsigned long long lower,
                           int key_bits, Smem &sm) {
  const int n = src.size();
  unsigned long long prefix = 0, above = 0;
  int hi = key_bits;  // bits >= hi are decided and held by prefix
  for (;;) {
    const int shift = hi > kBinBits ? hi - kBinBits : 0;
    const unsigned long long digit_mask = (1ull << (hi - shift)) - 1;
    clear_bins(sm, kMass);
    for (int j = threadIdx.x; j < n; j += kThreads) {
      const unsigned long long c = src.key(j);
      if (c >= lower && (c >> hi) == prefix) {
        const int b = int((c >> shift) & digit_mask);
        atomicAdd(&sm.count[b], 1u);
        if (kMass) atomicAdd(&sm.mass[b], src.mass_of(j));
      }
    }
    __syncthreads();
    find_bin<kMass>(sm, target - above);
    const int bin = sm.sel_bin;
    above += sm.sel_above;
    const unsigned int bin_count = sm.sel_count;
    const unsigned long long bin_measure = sm.sel_measure;
    prefix = (prefix << (hi - shift)) | unsigned(bin);
    hi = shift;
    if (bin_count == 1 || shift == 0) {
      const unsigned long long cum = above + bin_measure;
      if (shift == 0) return {prefix, cum};
      // One token left in the bin: fetch its full key.
      for (int j = threadIdx.x; j < n; j += kThreads) {
        const unsigned long long c = src.key(j);
        if (c >= lower && (c >> shift) == prefix) sm.found = c;
      }
      __syncthreads();
      const unsigned long long found = sm.found;
      __syncthreads();
      return {found, cum};
    }
  }
}

// Steps 4: top-k, top-p and the draw over a source. total: the mass of all tokens when top-k is
// off (known from the histogram pass). Returns the token index, or -1 for "no mass: greedy".
template <class Src>
__device__ int64_t finish(const Src &src, Smem &sm, int key_bits, bool use_k, int top_k,
                          float top_p, unsigned long long total, unsigned long long random) {
  unsigned long long lower = 0;
  if (use_k) {
    lower = select<false>(src, (unsigned long long)top_k, 0, key_bits, sm).key;
    unsigned long long part = 0;
    for (int j = threadIdx.x; j < src.size(); j += kThreads)
      if (src.key(j) >= lower) part += src.mass_of(j);
    total = block_sum_u64(part, sm.scratch);
    if (total == 0) return -1;
  }
  unsigned long long kept = total;
  if (top_p < 1.f) {
    const Selected p = select<true>(src, top_p_target(top_p, total), lower, key_bits, sm);
    lower = p.key;
    kept = p.cum;
  }
  const unsigned long long t = scale_uniform(random, kept);
  return index_of(select<true>(src, t + 1, lower, key_bits, sm).key);
}

template <class T>
__global__ void __launch_bounds__(kThreads, 1)
    sample_kernel(const T *logits, int64_t ld, int n, float tau, int top_k, float top_p,
                  unsigned long long seed, unsigned long long step, int64_t *out) {
  __shared__ Smem sm;
  const int row = blockIdx.x;
  const T *x = logits + int64_t(row) * ld;
  constexpr int kKeyBits = Dev<T>::kKeyBits + kIndexBits;
  constexpr int kTopShift = kKeyBits - kBinBits;
  const bool greedy = !(tau > 0);
  const bool use_k = !greedy && top_k > 0 && top_k < n;

  // 1. Largest key; with top-k, the count histogram of the top key bits.
  if (use_k) clear_bins(sm, false);
  unsigned long long best = 0;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const unsigned long long c = composite(Dev<T>::key(Dev<T>::raw(x, j)), j);
    best = c > best ? c : best;
    if (use_k) atomicAdd(&sm.count[c >> kTopShift], 1u);
  }
  best = block_max_u64(best, sm.scratch);
  const int64_t top = index_of(best);
  if (greedy) {
    if (threadIdx.x == 0) out[row] = top;
    return;
  }
  const float m = Dev<T>::value(Dev<T>::raw(x, top)) / tau;
  const GlobalSource<T> global{x, n, tau, m};
  const unsigned long long random = philox(seed, step, (unsigned long long)row);

  // 2-3. The bin that holds the boundary, and whether everything from it up fits in shared memory.
  unsigned long long total = 0;
  if (use_k) {
    find_bin<false>(sm, (unsigned long long)top_k);
  } else {
    clear_bins(sm, true);
    unsigned long long part = 0;
    for (int j = threadIdx.x; j < n; j += kThreads) {
      const unsigned long long c = global.key(j);
      const unsigned long long w = global.mass_of(j);
      part += w;
      const int b = int(c >> kTopShift);
      atomicAdd(&sm.count[b], 1u);
      atomicAdd(&sm.mass[b], w);
    }
    total = block_sum_u64(part, sm.scratch);  // its barriers also publish the histograms
    if (total == 0) {
      if (threadIdx.x == 0) out[row] = top;
      return;
    }
    // The mass to reach: the top-p boundary, or with top-p off the draw itself.
    const unsigned long long need =
        top_p < 1.f ? top_p_target(top_p, total) : scale_uniform(random, total) + 1;
    find_bin<true>(sm, need);
  }
  // Tokens in the boundary bin and above: count of the bins above plus the bin's own count. The
  // count above is summed here because, for the mass histogram, sel_above is a mass.
  const int boundary = sm.sel_bin;
  unsigned long long count_above = 0;
  for (int b = boundary + 1 + int(threadIdx.x); b < kBins; b += kThreads) count_above += sm.count[b];
  const unsigned long long n_cand = block_sum_u64(count_above, sm.scratch) + sm.sel_count;

  int64_t id;
  if (n_cand <= kCandidates) {
    if (threadIdx.x == 0) sm.n_cand = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += kThreads) {
      const unsigned long long c = global.key(j);
      if (int(c >> kTopShift) >= boundary) {
        const int slot = atomicAdd(&sm.n_cand, 1);
        sm.cand_key[slot] = c;
        sm.cand_mass[slot] = global.mass_of(j);
      }
    }
    __syncthreads();
    id = finish(SharedSource{&sm}, sm, kKeyBits, use_k, top_k, top_p, total, random);
  } else {
    id = finish(global, sm, kKeyBits, use_k, top_k, top_p, total, random);
  }
  if (threadIdx.x == 0) out[row] = id < 0 ? top : id;
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_sample_workspace_bytes(int64_t rows, int64_t vocab,
                                                          int64_t *bytes) {
  if (auto m = relat::validate::sample_shape("sample_workspace_bytes", rows, vocab); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (!bytes) return fail(RELAT_ERR_INVALID_ARGUMENT, "sample_workspace_bytes: bytes is null");
  *bytes = 0;
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_sample(const void *logits, int64_t rows, int64_t vocab,
                                          int64_t ld, float temperature, int64_t top_k,
                                          float top_p, uint64_t seed, uint64_t step, int64_t *out,
                                          void *workspace, int64_t workspace_bytes,
                                          relat_dtype dtype, relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("sample", stream);
  if (auto m = relat::validate::sample(logits, rows, vocab, ld, temperature, top_p, out, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  if (rows > 0x7fffffff) return fail(RELAT_ERR_UNSUPPORTED, "sample: more than 2^31-1 rows");
  // top_k outside [1, vocab) means "all"; clamp so it fits an int.
  const int k = (top_k > 0 && top_k < vocab) ? int(top_k) : 0;
  return dispatch_dtype(dtype, "sample", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RELAT_LAUNCH(unsigned(rows), kThreads, 0, stream, sample_kernel<T>)(
        static_cast<const T *>(logits), ld, int(vocab), temperature, k, top_p,
        (unsigned long long)seed, (unsigned long long)step, out);
    return check_launch("sample");
  });
}
