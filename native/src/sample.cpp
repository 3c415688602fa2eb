// Token sampling (greedy, temperature, top-k, top-p), CPU twin of kernels/sample.cu.
// Semantics (relat.h) are defined by sample_math.h: a total order on tokens by composite key,
// integer masses floor(exp(s - max s) * 2^40), one Philox number per (seed, step, row). The two
// libraries use different algorithms but compute the same function, bit for bit.
// Per row, single-threaded (rows run in parallel, each thread with its own workspace share):
//  - greedy: one vectorised pass for the block maxima of the order key, then one block scanned;
//  - top-k (k < vocab): one pass keeps a buffer of candidates above a running threshold (the k-th
//    largest value so far, refreshed whenever 2k are held; a vector compare skips 64 tokens at a
//    time), then nth_element and a sort of k candidates; top-p and the draw walk the sorted k
//    candidates: no full sort, and exp only for the k;
//  - no top-k: one vectorised pass computes every mass, its histogram bin (top 11 key bits) and the
//    total; one scatter pass builds the mass histogram; top-p and the draw each find the crossing
//    bin, gather its tokens (AVX2 scan of the bins), narrow them 11 key bits at a time and sort the
//    few left. The draw reuses the histogram, cut at the top-p boundary.
// Floor: one read of the logits row (vocab * sizeof(T) bytes); without top-k also 10 bytes per token
// written (mass, bin) and read back, and one exp per token.
#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <functional>

#include "cpu_common.h"
#include "sample_math.h"
#include "validate.h"

namespace relat::cpu {
namespace {

using namespace relat::sample_math;

template <class T> struct Traits;
template <> struct Traits<float> {
  static constexpr int kKeyBits = 32;
  static uint32_t bits(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return b;
  }
  static uint32_t key(uint32_t b) { return order_key_f32(b); }
};
template <> struct Traits<bf16> {
  static constexpr int kKeyBits = 16;
  static uint32_t bits(bf16 v) { return v.bits; }
  static uint32_t key(uint32_t b) { return order_key_bf16(b); }
};
template <> struct Traits<f16> {
  static constexpr int kKeyBits = 16;
  static uint32_t bits(f16 v) { return v.bits; }
  static uint32_t key(uint32_t b) { return order_key_f16(b); }
};

// Per-row workspace in 64-bit words: masses (n), a (key, mass) pair buffer (2n), histogram bins
// (n x u16), positions (n x u32).
inline int64_t workspace_words(int64_t n) { return 3 * n + (n + 3) / 4 + (n + 1) / 2; }

template <class T> RELAT_VECTOR_CLONES uint32_t max_key(const T *x, int64_t n) {
  uint32_t best = 0;
#pragma omp simd reduction(max : best)
  for (int64_t j = 0; j < n; ++j) best = std::max(best, Traits<T>::key(Traits<T>::bits(x[j])));
  return best;
}

// Index of the largest order key, the lowest index among equals: block maxima in one vectorised
// pass, then a scan of the first block that holds the maximum.
template <class T> int64_t arg_max_key(const T *x, int64_t n) {
  constexpr int64_t kBlock = 2048;
  uint32_t best = 0;
  int64_t best_block = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const uint32_t b = max_key(x + j0, std::min(kBlock, n - j0));
    if (b > best || j0 == 0) {
      best = b;
      best_block = j0;
    }
  }
  int64_t j = best_block;
  while (Traits<T>::key(Traits<T>::bits(x[j])) != best) ++j;
  return j;
}

constexpr int kBinBits = 11;
constexpr int kBins = 1 << kBinBits;

// One vectorised pass: the mass of every token, its histogram bin (the top 11 bits of its order
// key) and the total mass.
template <class T>
RELAT_VECTOR_CLONES uint64_t masses_and_bins(const T *x, int64_t n, float tau, float m,
                                             uint64_t *q, uint16_t *bins) {
  constexpr int kShift = Traits<T>::kKeyBits - kBinBits;
  uint64_t total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t w = mass(to_f32(x[j]) / tau - m);
    q[j] = w;
    bins[j] = uint16_t(Traits<T>::key(Traits<T>::bits(x[j])) >> kShift);
    total += w;
  }
  return total;
}

// Mass per bin. Four interleaved histograms: neighbouring tokens often share a bin, and a single
// histogram would chain every add on the previous store to the same counter.
inline void mass_histogram(const uint16_t *bins, const uint64_t *q, int64_t n, uint64_t *hist) {
  uint64_t h[4][kBins] = {};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    h[0][bins[j]] += q[j];
    h[1][bins[j + 1]] += q[j + 1];
    h[2][bins[j + 2]] += q[j + 2];
    h[3][bins[j + 3]] += q[j + 3];
  }
  for (; j < n; ++j) h[0][bins[j]] += q[j];
  for (int b = 0; b < kBins; ++b) hist[b] = h[0][b] + h[1][b] + h[2][b] + h[3][b];
}

// The bin where the mass summed from the top bin down first reaches need; *above gets the mass of
// the bins above it.
inline int crossing_bin(const uint64_t *hist, uint64_t need, uint64_t *above) {
  uint64_t cum = 0;
  int bin = kBins - 1;
  for (; bin > 0; --bin) {
    if (cum + hist[bin] >= need) break;
    cum += hist[bin];
  }
  *above = cum;
  return bin;
}

struct Pair {
  uint64_t key, mass;
};

// Positions j with bins[j] == bin, in increasing order, into out; returns how many.
inline int64_t find_bin_scalar(const uint16_t *bins, int64_t n, uint16_t bin, uint32_t *out) {
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j)
    if (bins[j] == bin) out[count++] = uint32_t(j);
  return count;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
// 16 bins per compare: most positions are skipped without a branch per token.
__attribute__((target("avx2"))) int64_t find_bin_avx2(const uint16_t *bins, int64_t n,
                                                       uint16_t bin, uint32_t *out) {
  const __m256i wanted = _mm256_set1_epi16(short(bin));
  int64_t count = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(bins + j));
    uint32_t mask = uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi16(v, wanted)));
    while (mask) {  // two mask bits per 16-bit lane
      out[count++] = uint32_t(j + (__builtin_ctz(mask) >> 1));
      mask &= mask - 1;
      mask &= mask - 1;
    }
  }
  for (; j < n; ++j)
    if (bins[j] == bin) out[count++] = uint32_t(j);
  return count;
}

inline int64_t find_bin(const uint16_t *bins, int64_t n, uint16_t bin, uint32_t *out) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? find_bin_avx2(bins, n, bin, out) : find_bin_scalar(bins, n, bin, out);
}
#else
inline int64_t find_bin(const uint16_t *bins, int64_t n, uint16_t bin, uint32_t *out) {
  return find_bin_scalar(bins, n, bin, out);
}
#endif

struct Crossing {
  uint64_t key;  // composite key of the token where the cumulative mass reaches the target
  uint64_t cum;  // cumulative mass up to and including it
  int bin;       // its histogram bin
  uint64_t bin_above;  // mass of the bins above that bin (within the tokens considered)
};

// Among tokens with composite key >= lower, taken largest key first, the token at which the
// cumulative mass first reaches target (1 <= target <= their mass). hist: the mass per bin of
// exactly those tokens. Radix selection: the crossing bin's tokens are gathered as (key, mass)
// pairs and narrowed 11 bits at a time until few are left, which are sorted and walked.
template <class T>
Crossing select_mass(const T *x, const uint64_t *q, const uint16_t *bins, int64_t n,
                     const uint64_t *hist, uint64_t target, uint64_t lower, Pair *pairs,
                     uint32_t *positions) {
  constexpr int kKeyBits = Traits<T>::kKeyBits + kIndexBits;
  uint64_t above;
  const int bin = crossing_bin(hist, target, &above);
  const uint64_t bin_above = above;
  const int64_t found = find_bin(bins, n, uint16_t(bin), positions);
  int64_t count = 0;
  for (int64_t i = 0; i < found; ++i) {
    const uint32_t j = positions[i];
    const uint64_t c = composite(Traits<T>::key(Traits<T>::bits(x[j])), j);
    if (c >= lower) pairs[count++] = {c, q[j]};
  }
  uint64_t sub_hist[kBins];
  int shift = kKeyBits - kBinBits;
  while (count > 64 && shift > 0) {
    shift = std::max(0, shift - kBinBits);
    std::memset(sub_hist, 0, sizeof sub_hist);
    for (int64_t i = 0; i < count; ++i) sub_hist[(pairs[i].key >> shift) & (kBins - 1)] += pairs[i].mass;
    uint64_t more;
    const uint64_t sub = uint64_t(crossing_bin(sub_hist, target - above, &more));
    above += more;
    int64_t kept = 0;
    for (int64_t i = 0; i < count; ++i)
      if (((pairs[i].key >> shift) & (kBins - 1)) == sub) pairs[kept++] = pairs[i];
    count = kept;
  }
  std::sort(pairs, pairs + count, [](const Pair &a, const Pair &b) { return a.key > b.key; });
  uint64_t cum = above;
  for (int64_t i = 0; i < count; ++i) {
    cum += pairs[i].mass;
    if (cum >= target) return {pairs[i].key, cum, bin, bin_above};
  }
  return {count ? pairs[count - 1].key : 0, cum, bin, bin_above};  // unreachable for valid targets
}

// True when some token of x[0..len) has a larger value than threshold (NaN never does; -0 and +0
// are equal, as their order keys are).
template <class T>
RELAT_VECTOR_CLONES bool any_above(const T *x, int64_t len, float threshold) {
  int any = 0;
#pragma omp simd reduction(| : any)
  for (int64_t i = 0; i < len; ++i) any |= to_f32(x[i]) > threshold;
  return any != 0;
}

// The composite keys of the k largest tokens, sorted largest first, in buf[0..k). buf holds
// min(n, 2k + 64) entries.
template <class T> void top_k_keys(const T *x, int64_t n, int64_t k, uint64_t *buf) {
  constexpr int64_t kBlock = 64;
  const int64_t cap = std::min<int64_t>(n, 2 * k + kBlock);
  int64_t count = 0;
  // Tokens come in index order, so a later token beats the current k-th largest exactly when its
  // value is larger: blocks with no such token are skipped with one vector compare. Pruning back
  // to k whenever 2k are held keeps the threshold fresh (it doubles the tokens seen between prunes).
  bool pruned = false;
  float threshold = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t len = std::min(kBlock, n - j0);
    if (!pruned) {
      for (int64_t i = 0; i < len; ++i)
        buf[count++] = composite(Traits<T>::key(Traits<T>::bits(x[j0 + i])), j0 + i);
    } else {
      if (!any_above(x + j0, len, threshold)) continue;
      for (int64_t i = 0; i < len; ++i)
        if (to_f32(x[j0 + i]) > threshold)
          buf[count++] = composite(Traits<T>::key(Traits<T>::bits(x[j0 + i])), j0 + i);
    }
    if (count + kBlock > cap && count > k) {
      std::nth_element(buf, buf + (k - 1), buf + count, std::greater<uint64_t>());
      count = k;
      const uint64_t kth = buf[k - 1];
      // A NaN k-th (order key 0) means fewer than k numbers so far: keep taking everything.
      pruned = (kth >> kIndexBits) != 0;
      threshold = to_f32(x[index_of(kth)]);
    }
  }
  if (count > k) std::nth_element(buf, buf + (k - 1), buf + count, std::greater<uint64_t>());
  std::sort(buf, buf + k, std::greater<uint64_t>());
}

template <class T>
int64_t sample_row(const T *x, int64_t n, float tau, int64_t top_k, float top_p, uint64_t random,
                   uint64_t *ws) {
  if (!(tau > 0)) return arg_max_key(x, n);

  if (top_k > 0 && top_k < n) {
    uint64_t *keys = ws;       // top_k composite keys, largest first
    uint64_t *q = ws + 2 * n;  // their masses
    top_k_keys(x, n, top_k, keys);
    const int64_t top = index_of(keys[0]);
    const float m = to_f32(x[top]) / tau;
    uint64_t total = 0;
    for (int64_t i = 0; i < top_k; ++i) {
      q[i] = mass(to_f32(x[index_of(keys[i])]) / tau - m);
      total += q[i];
    }
    if (total == 0) return top;
    int64_t kept = top_k;
    uint64_t kept_mass = total;
    if (top_p < 1.f) {
      const uint64_t target = top_p_target(top_p, total);
      uint64_t cum = 0;
      for (int64_t i = 0; i < top_k; ++i) {
        cum += q[i];
        if (cum >= target) {
          kept = i + 1;
          kept_mass = cum;
          break;
        }
      }
    }
    const uint64_t t = scale_uniform(random, kept_mass);
    uint64_t cum = 0;
    for (int64_t i = 0; i < kept; ++i) {
      cum += q[i];
      if (cum > t) return index_of(keys[i]);
    }
    return top;  // unreachable
  }

  const int64_t top = arg_max_key(x, n);
  const float m = to_f32(x[top]) / tau;
  uint64_t *q = ws;
  Pair *pairs = reinterpret_cast<Pair *>(ws + n);
  uint16_t *bins = reinterpret_cast<uint16_t *>(ws + 3 * n);
  uint32_t *positions = reinterpret_cast<uint32_t *>(ws + 3 * n + (n + 3) / 4);
  const uint64_t total = masses_and_bins(x, n, tau, m, q, bins);
  if (total == 0) return top;
  uint64_t hist[kBins];
  mass_histogram(bins, q, n, hist);
  uint64_t lower = 0, kept_mass = total;
  if (top_p < 1.f) {
    const Crossing c = select_mass(x, q, bins, n, hist, top_p_target(top_p, total), 0, pairs,
                                     positions);
    lower = c.key;
    kept_mass = c.cum;
    // The histogram of the kept tokens: nothing below the boundary bin, and in it only the mass
    // from its top down to the boundary token.
    for (int b = 0; b < c.bin; ++b) hist[b] = 0;
    hist[c.bin] = c.cum - c.bin_above;
  }
  const uint64_t t = scale_uniform(random, kept_mass);
  return index_of(select_mass(x, q, bins, n, hist, t + 1, lower, pairs, positions).key);
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_sample_workspace_bytes(int64_t rows, int64_t vocab,
                                                         int64_t *bytes) {
  if (auto m = relat::validate::sample_shape("sample_workspace_bytes", rows, vocab); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (!bytes) return fail(RELAT_ERR_INVALID_ARGUMENT, "sample_workspace_bytes: bytes is null");
  const int64_t slots = std::min<int64_t>(rows, omp_get_max_threads());
  *bytes = slots * workspace_words(vocab) * 8;
  return RELAT_OK;
}

extern "C" relat_status relat_cpu_sample(const void *logits, int64_t rows, int64_t vocab, int64_t ld,
                                         float temperature, int64_t top_k, float top_p,
                                         uint64_t seed, uint64_t step, int64_t *out,
                                         void *workspace, int64_t workspace_bytes,
                                         relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::sample(logits, rows, vocab, ld, temperature, top_p, out, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (rows == 0) return RELAT_OK;
  const bool greedy = !(temperature > 0);
  const int64_t per_row = workspace_words(vocab) * 8;
  int64_t slots = rows;
  if (!greedy) {
    slots = workspace ? std::min(rows, workspace_bytes / per_row) : 0;
    if (slots < 1)
      return fail(RELAT_ERR_INVALID_ARGUMENT,
                  "sample: workspace of %lld bytes is too small; sample_workspace_bytes asks for "
                  "at least %lld",
                  (long long)workspace_bytes, (long long)per_row);
  }
  return dispatch_dtype(dtype, "sample", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *x = static_cast<const T *>(logits);
    uint64_t *ws = static_cast<uint64_t *>(workspace);
    const int threads = int(std::min<int64_t>(slots, omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
    for (int64_t r = 0; r < rows; ++r) {
      uint64_t *mine = greedy ? nullptr : ws + omp_get_thread_num() * workspace_words(vocab);
      out[r] = sample_row(x + r * ld, vocab, temperature, top_k, top_p, philox(seed, step, uint64_t(r)),
                          mine);
    }
    return RELAT_OK;
  });
}
