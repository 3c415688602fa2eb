// Helpers shared by the kernel tests (the CUDA-on-CPU tests in tests/native and the GPU check
// driver in tests/gpu): a seed printed once and reusable, random tensors in any relat dtype, NaN
// poisoning so unwritten outputs fail, comparison at the dtype's tolerance, and pass/fail counting.
// Header-only, host C++17 (uses _Float16, so GCC >= 12 or Clang).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "relat/relat.h"

#ifdef RELAT_TEST_EMULATION
namespace relat_emu {
void set_schedule_seed(uint64_t seed);  // tests/native/cuda_emu: interleavings follow the test seed
const char *schedule_name();            // the schedule policy (RELAT_EMU_SCHEDULE)
bool race_checked();                    // the kernels carry the inter-block conflict check
}
#endif

namespace relat::test {

// ---- dtypes -------------------------------------------------------------------------------------
inline size_t dtype_size(relat_dtype d) { return d == RELAT_F32 ? 4 : 2; }
inline const char *dtype_name(relat_dtype d) {
  return d == RELAT_F32 ? "f32" : d == RELAT_BF16 ? "bf16" : d == RELAT_F16 ? "f16" : "?";
}

inline uint16_t f32_to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_f32(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_f16(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
inline float f16_to_f32(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return float(h);
}

inline float load(const void *p, relat_dtype d, size_t i) {
  if (d == RELAT_F32) return static_cast<const float *>(p)[i];
  const uint16_t b = static_cast<const uint16_t *>(p)[i];
  return d == RELAT_BF16 ? bf16_to_f32(b) : f16_to_f32(b);
}
inline void store(void *p, relat_dtype d, size_t i, float v) {
  if (d == RELAT_F32)
    static_cast<float *>(p)[i] = v;
  else
    static_cast<uint16_t *>(p)[i] = d == RELAT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
}

// A host tensor of exactly n elements: no slack after the last byte, so ASan sees any overrun.
struct Tensor {
  relat_dtype dtype = RELAT_F32;
  size_t n = 0;
  std::vector<unsigned char> bytes;
  Tensor() = default;
  Tensor(relat_dtype d, size_t count) : dtype(d), n(count), bytes(count * dtype_size(d)) {}
  void *data() { return bytes.data(); }
  const void *data() const { return bytes.data(); }
  size_t size_bytes() const { return bytes.size(); }
  float at(size_t i) const { return load(data(), dtype, i); }
};

// ---- seeds and random data ----------------------------------------------------------------------
// One seed per process, printed so a failure can be replayed with RELAT_TEST_SEED=<seed>.
inline uint64_t test_seed() {
  static const uint64_t seed = [] {
    uint64_t s;
    const char *e = std::getenv("RELAT_TEST_SEED");
    if (e && *e) {  // empty: Maven's default when -Drelat.test.seed is not given
      char *end = nullptr;
      s = std::strtoull(e, &end, 0);
      if (*end) {
        std::fprintf(stderr, "RELAT_TEST_SEED=%s: not an unsigned integer seed\n", e);
        std::exit(2);
      }
    } else {
      std::random_device rd;
      s = (uint64_t(rd()) << 32) ^ rd() ^
          uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    std::printf("seed %llu (replay with RELAT_TEST_SEED=%llu)\n", (unsigned long long)s,
                (unsigned long long)s);
#ifdef RELAT_TEST_EMULATION
    relat_emu::set_schedule_seed(s);
    // A failure replays only under the same schedule policy (and in the same build).
    std::printf("emulated schedule %s (RELAT_EMU_SCHEDULE=%s), inter-block conflict check %s\n",
                relat_emu::schedule_name(), relat_emu::schedule_name(),
                relat_emu::race_checked() ? "on" : "off");
#endif
    return s;
  }();
  return seed;
}

// True in the adversarial runs (priority or greedy schedule, race-checked build). They look for
// synchronisation bugs, which the dtype of a shape does not change, so the slowest tests may run
// one dtype per shape there; the random-schedule run keeps the full matrix.
inline bool reduced_matrix() {
#ifdef RELAT_TEST_EMULATION
  return std::strcmp(relat_emu::schedule_name(), "random") != 0 || relat_emu::race_checked();
#else
  return false;
#endif
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
  int64_t integer(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen_);
  }

 private:
  std::mt19937_64 gen_;
};

inline Tensor random_tensor(Rng &rng, relat_dtype d, size_t n, float lo, float hi) {
  Tensor t(d, n);
  for (size_t i = 0; i < n; ++i) store(t.data(), d, i, rng.uniform(lo, hi));
  return t;
}

// ---- numeric edges ------------------------------------------------------------------------------
// Rows for norms and softmaxes that random data in [-3, 3] never produces: all zeros, mean square
// at eps and far below it, tiny magnitudes (around the smallest normal of the dtype, some of them
// subnormal), large ones whose squares still sum without overflow, and huge ones (1e30 in fp32 and
// bf16, where x*x overflows fp32; near the largest f16).
enum class Edge { kZero, kAtEps, kBelowEps, kTiny, kLarge, kHuge };
constexpr Edge kEdges[] = {Edge::kZero, Edge::kAtEps, Edge::kBelowEps,
                           Edge::kTiny, Edge::kLarge, Edge::kHuge};
inline const char *edge_name(Edge e) {
  switch (e) {
    case Edge::kZero: return "zero";
    case Edge::kAtEps: return "ms=eps";
    case Edge::kBelowEps: return "ms<<eps";
    case Edge::kTiny: return "tiny";
    case Edge::kLarge: return "large";
    case Edge::kHuge: return "huge";
  }
  return "?";
}
// Writes one row of `cols` values of the edge's magnitude with random signs into t at `offset`.
inline void fill_edge(Rng &rng, Tensor &t, size_t offset, int64_t cols, Edge e, float eps) {
  const relat_dtype d = t.dtype;
  const float smallest_normal = d == RELAT_F16 ? 6.103515625e-5f : 1.17549435e-38f;
  const float largest = d == RELAT_F16 ? 65504.f : 3.40282347e38f;
  for (int64_t c = 0; c < cols; ++c) {
    float m = 0.f;
    switch (e) {
      case Edge::kZero: m = 0.f; break;
      case Edge::kAtEps: m = std::sqrt(eps); break;  // every x^2 = eps: the mean square is eps
      case Edge::kBelowEps: m = std::sqrt(eps) * rng.uniform(1e-3f, 1e-2f); break;
      case Edge::kTiny: m = smallest_normal * rng.uniform(0.25f, 4.f); break;
      // The sum of squares stays below a quarter of the fp32 maximum, in any order.
      case Edge::kLarge: m = std::sqrt(3.4e38f / 4.f / float(cols)) * rng.uniform(0.5f, 1.f); break;
      case Edge::kHuge:
        m = d == RELAT_F16 ? largest * rng.uniform(0.5f, 0.99f) : 1e30f * rng.uniform(0.5f, 1.f);
        break;
    }
    if (d == RELAT_F16 && e == Edge::kLarge) m = std::min(m, 255.f);  // f16: its own range
    store(t.data(), d, offset + size_t(c), rng.integer(0, 1) ? m : -m);
  }
}

// ---- poisoning and comparison -------------------------------------------------------------------
inline void poison(void *p, relat_dtype d, size_t n) {
  if (d == RELAT_F32) {
    for (size_t i = 0; i < n; ++i) static_cast<float *>(p)[i] = std::nanf("");
  } else {
    const uint16_t nan = d == RELAT_BF16 ? 0x7fc0 : 0x7e00;
    for (size_t i = 0; i < n; ++i) static_cast<uint16_t *>(p)[i] = nan;
  }
}
inline void poison(Tensor &t) { poison(t.data(), t.dtype, t.n); }

struct Tolerance {
  double rtol, atol;
};
// Relative tolerance per storage type (about 2-4 ulps of bf16/f16 after rounding; fp32 allows for a
// different summation order); the small absolute part covers values that round to near zero.
inline Tolerance tolerance(relat_dtype d) {
  if (d == RELAT_BF16) return {1e-2, 1e-3};
  if (d == RELAT_F16) return {1e-3, 1e-4};
  return {1e-5, 1e-6};
}

struct Comparison {
  bool ok = true;
  size_t bad = 0;    // elements out of tolerance (NaN counts)
  size_t first = 0;  // index of the first of them
  double got = 0, want = 0;
  double max_err = 0;  // largest |got - want| / (atol + rtol*|want|); <= 1 passes
  std::string describe() const {
    char buf[200];
    if (ok)
      std::snprintf(buf, sizeof buf, "max error %.3g of tolerance", max_err);
    else
      std::snprintf(buf, sizeof buf, "%zu bad, first at %zu: got %.9g want %.9g", bad, first, got,
                    want);
    return buf;
  }
};

inline Comparison compare(const void *got, const void *want, relat_dtype d, size_t n,
                          Tolerance tol) {
  Comparison c;
  for (size_t i = 0; i < n; ++i) {
    const double g = load(got, d, i), w = load(want, d, i);
    const double bound = tol.atol + tol.rtol * std::fabs(w);
    const bool both_nan = std::isnan(g) && std::isnan(w);
    const double err = both_nan ? 0 : std::fabs(g - w) / bound;
    if (!(err <= 1.0)) {  // NaN fails too
      if (c.ok) c.first = i, c.got = g, c.want = w;
      c.ok = false;
      ++c.bad;
    } else if (err > c.max_err) {
      c.max_err = err;
    }
  }
  return c;
}
inline Comparison compare(const Tensor &got, const Tensor &want, Tolerance tol) {
  return compare(got.data(), want.data(), want.dtype, want.n, tol);
}

// ---- counting -----------------------------------------------------------------------------------
class Counter {
 public:
  // Records one check; prints it ("ok" lines only when RELAT_TEST_VERBOSE is set).
  bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4))) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ++(ok ? passed_ : failed_);
    if (ok && verbose_) std::printf("ok   %s\n", buf);
    if (!ok)  // the seed in every failure line, so each one replays on its own
      std::printf("FAIL %s (seed %llu, replay with RELAT_TEST_SEED=%llu)\n", buf,
                  (unsigned long long)test_seed(), (unsigned long long)test_seed());
    std::fflush(stdout);
    return ok;
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }
  // Prints the summary line; returns the process exit code.
  int finish() const {
    std::printf("%d passed, %d failed\n", passed_, failed_);
    return failed_ == 0 && passed_ > 0 ? 0 : 1;
  }

 private:
  int passed_ = 0, failed_ = 0;
  bool verbose_ = std::getenv("RELAT_TEST_VERBOSE") != nullptr;
};

}  // namespace relat::test
