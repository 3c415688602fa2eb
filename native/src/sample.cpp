// Token sampling (greedy, temperature, top-k, top-p), CPU twin of kernels/sample.cu.
// Semantics (relat.h) are defined by sample_math.h: a total order on tokens by composite key,
// integer masses floor(exp(s - max s) * 2^40), one Philox number per (seed, step, row). The two
// libraries use different algorithms but compute the same function, bit for bit.
// Per row, single-threaded (rows run in parallel):
//  - greedy: one vectorised pass for the largest order key, one to find its first index;
//  - top-k (k < vocab): one pass keeps a buffer of candidates above a running threshold (the k-th
//    largest key seen so far; a 32-bit vector compare rejects almost every token), then nth_element
//    and a sort of k candidates; top-p and the draw walk the sorted k candidates: no full sort;
//  - no top-k: one vectorised pass computes every mass and the total; top-p and the draw each find
//    the token where the cumulative mass (largest first) crosses a target with a 4096-bin mass
//    histogram of the top key bits, then sort only the tokens of the crossing bin.
// Floor: one read of the logits row (vocab * sizeof(T) bytes) plus, without top-k, 8 bytes per token
// of masses written once and read twice; one exp per token (only k of them with top-k).
#include <omp.h>

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

// Per-row workspace: masses (vocab u64) and a candidate buffer (2 * vocab u64).
constexpr int64_t kWorkspacePerToken = 3 * sizeof(uint64_t);

template <class T> RELAT_VECTOR_CLONES uint32_t max_key(const T *x, int64_t n) {
  uint32_t best = 0;
#pragma omp simd reduction(max : best)
  for (int64_t j = 0; j < n; ++j) best = std::max(best, Traits<T>::key(Traits<T>::bits(x[j])));
  return best;
}

// Masses of all tokens; returns their sum.
template <class T>
RELAT_VECTOR_CLONES uint64_t all_masses(const T *x, int64_t n, float tau, float m, uint64_t *q) {
  uint64_t total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t w = mass(to_f32(x[j]) / tau - m);
    q[j] = w;
    total += w;
  }
  return total;
}

struct Crossing {
  uint64_t key;  // composite key of the token where the cumulative mass reaches the target
  uint64_t cum;  // cumulative mass up to and including it
};

// Among tokens with composite key >= lower, taken largest key first, the token at which the
// cumulative mass first reaches target (1 <= target <= mass of those tokens).
template <class T>
Crossing select_mass(const T *x, const uint64_t *q, int64_t n, uint64_t target, uint64_t lower,
                     uint64_t *buf) {
  constexpr int kBinBits = 12;
  constexpr int kShift = Traits<T>::kKeyBits + kIndexBits - kBinBits;
  uint64_t hist[1 << kBinBits] = {};
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t c = composite(Traits<T>::key(Traits<T>::bits(x[j])), j);
    if (c >= lower) hist[c >> kShift] += q[j];
  }
  uint64_t cum = 0;
  int bin = (1 << kBinBits) - 1;
  for (; bin > 0; --bin) {
    if (cum + hist[bin] >= target) break;
    cum += hist[bin];
  }
  // Gather the crossing bin's tokens as (key, mass) pairs and walk them in order.
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t c = composite(Traits<T>::key(Traits<T>::bits(x[j])), j);
    if (c >= lower && int(c >> kShift) == bin) {
      buf[2 * count] = c;
      buf[2 * count + 1] = q[j];
      ++count;
    }
  }
  struct Pair {
    uint64_t key, mass;
  };
  Pair *pairs = reinterpret_cast<Pair *>(buf);
  std::sort(pairs, pairs + count, [](const Pair &a, const Pair &b) { return a.key > b.key; });
  for (int64_t i = 0; i < count; ++i) {
    cum += pairs[i].mass;
    if (cum >= target) return {pairs[i].key, cum};
  }
  return {count ? pairs[count - 1].key : 0, cum};  // unreachable when target is valid
}

// Order keys of x[0..len) into keys; true when one of them is above threshold.
template <class T>
RELAT_VECTOR_CLONES bool block_keys(const T *x, int64_t len, uint32_t *keys, uint32_t threshold) {
  int any = 0;
#pragma omp simd reduction(| : any)
  for (int64_t i = 0; i < len; ++i) {
    keys[i] = Traits<T>::key(Traits<T>::bits(x[i]));
    any |= keys[i] > threshold;
  }
  return any != 0;
}

// The composite keys of the k largest tokens, sorted largest first, in buf[0..k).
template <class T> void top_k_keys(const T *x, int64_t n, int64_t k, uint64_t *buf) {
  constexpr int64_t kBlock = 64;
  const int64_t cap = std::min<int64_t>(n, 2 * k + 1024);
  int64_t count = 0;
  // Tokens come in index order, so a later token beats the current k-th largest exactly when its
  // order key is larger: the test is a 32-bit compare.
  uint32_t threshold = 0;
  bool pruned = false;
  auto prune = [&] {
    std::nth_element(buf, buf + (k - 1), buf + count, std::greater<uint64_t>());
    count = k;
    threshold = uint32_t(buf[k - 1] >> kIndexBits);
    pruned = true;
  };
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t len = std::min(kBlock, n - j0);
    uint32_t keys[kBlock];
    if (!block_keys(x + j0, len, keys, threshold) && pruned) continue;
    for (int64_t i = 0; i < len; ++i)
      if (!pruned || keys[i] > threshold) buf[count++] = composite(keys[i], j0 + i);
    if (count + kBlock > cap && count > k) prune();
  }
  if (count > k) std::nth_element(buf, buf + (k - 1), buf + count, std::greater<uint64_t>());
  std::sort(buf, buf + k, std::greater<uint64_t>());
}

template <class T>
int64_t sample_row(const T *x, int64_t n, float tau, int64_t top_k, float top_p, uint64_t random,
                   uint64_t *ws) {
  const uint32_t best = max_key(x, n);
  int64_t top = 0;
  while (Traits<T>::key(Traits<T>::bits(x[top])) != best) ++top;
  if (!(tau > 0)) return top;
  const float m = to_f32(x[top]) / tau;

  if (top_k > 0 && top_k < n) {
    uint64_t *keys = ws;          // top_k composite keys, largest first
    uint64_t *q = ws + 2 * n;     // their masses (top_k <= n entries)
    top_k_keys(x, n, top_k, keys);
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

  uint64_t *q = ws;
  uint64_t *buf = ws + n;
  const uint64_t total = all_masses(x, n, tau, m, q);
  if (total == 0) return top;
  uint64_t lower = 0, kept_mass = total;
  if (top_p < 1.f) {
    const Crossing c = select_mass(x, q, n, top_p_target(top_p, total), 0, buf);
    lower = c.key;
    kept_mass = c.cum;
  }
  const uint64_t t = scale_uniform(random, kept_mass);
  return index_of(select_mass(x, q, n, t + 1, lower, buf).key);
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
  *bytes = slots * vocab * kWorkspacePerToken;
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
  const int64_t per_row = vocab * kWorkspacePerToken;
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
      uint64_t *mine = greedy ? nullptr : ws + omp_get_thread_num() * vocab * 3;
      out[r] = sample_row(x + r * ld, vocab, temperature, top_k, top_p, philox(seed, step, uint64_t(r)),
                          mine);
    }
    return RELAT_OK;
  });
}
