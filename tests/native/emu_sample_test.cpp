// Sampling: kernels/sample.cu run on the CPU through the CUDA emulation, against its CPU twin
// native/src/sample.cpp. The two use different algorithms (radix selections over shared memory or
// the row on the GPU side; candidate buffers, sorts and histograms on the CPU side) for one
// function of (logits, settings, seed, step, row), so the ids must be EQUAL, not close: every
// dtype; vocabularies from 1 to 151,936; greedy, temperature, top-k (1, 20, 3000), top-p, both;
// logits with many ties (every boundary falls inside a run of equal values), peaked logits (the
// candidates fit in shared memory) and flat ones (they do not: the selections run over the row),
// -inf / +inf / NaN, and rows with a stride.
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Setting {
  float temperature;
  int64_t top_k;
  float top_p;
};

const Setting kSettings[] = {
    {0.f, 0, 1.f},      {1.f, 0, 1.f},   {0.7f, 20, 1.f},   {1.f, 0, 0.9f},    {0.6f, 20, 0.95f},
    {1.3f, 3000, 0.5f}, {0.9f, 1, 1.f},  {2.f, 0, 0.001f},  {1.f, 5, 0.3f},
};

enum class Kind { kSpread, kTies, kPeaked };

Tensor make_logits(Rng &rng, relat_dtype d, int64_t rows, int64_t vocab, int64_t ld, Kind kind) {
  Tensor t(d, size_t(rows * ld));
  poison(t);  // the gap between rows must never be read as a logit
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < vocab; ++j) {
      float v;
      switch (kind) {
        case Kind::kSpread: v = rng.uniform(-6.f, 6.f); break;
        case Kind::kTies: v = float(rng.integer(-3, 3)); break;
        default: v = rng.integer(0, 199) == 0 ? rng.uniform(10.f, 14.f) : rng.uniform(-30.f, -5.f);
      }
      store(t.data(), d, size_t(r * ld + j), v);
    }
  }
  return t;
}

const char *kind_name(Kind k) {
  return k == Kind::kSpread ? "spread" : k == Kind::kTies ? "ties" : "peaked";
}

void check(Counter &counter, Rng &rng, relat_dtype d, int64_t rows, int64_t vocab, int64_t ld,
           Kind kind, const Setting *settings, size_t n_settings, uint64_t steps = 2) {
  const Tensor logits = make_logits(rng, d, rows, vocab, ld, kind);
  int64_t ws_bytes = 0;
  relat_cpu_sample_workspace_bytes(rows, vocab, &ws_bytes);
  std::vector<unsigned char> ws(static_cast<size_t>(ws_bytes));
  int64_t emu_ws = -1;
  relat_cuda_sample_workspace_bytes(rows, vocab, &emu_ws);
  const uint64_t seed = uint64_t(rng.integer(0, INT64_MAX));
  for (size_t si = 0; si < n_settings; ++si) {
    const Setting &s = settings[si];
    for (uint64_t step = 0; step < steps; ++step) {
      std::vector<int64_t> out_emu(size_t(rows), -1), out_cpu(size_t(rows), -2);
      const auto t0 = std::chrono::steady_clock::now();
      const relat_status se =
          relat_cuda_sample(logits.data(), rows, vocab, ld, s.temperature, s.top_k, s.top_p, seed,
                            step, out_emu.data(), nullptr, 0, d, nullptr);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const relat_status sc =
          relat_cpu_sample(logits.data(), rows, vocab, ld, s.temperature, s.top_k, s.top_p, seed,
                           step, out_cpu.data(), ws.data(), ws_bytes, d, nullptr);
      char what[200];
      std::snprintf(what, sizeof what,
                    "sample %s %s rows=%lld vocab=%lld ld=%lld T=%g k=%lld p=%g step=%llu",
                    dtype_name(d), kind_name(kind), (long long)rows, (long long)vocab,
                    (long long)ld, s.temperature, (long long)s.top_k, s.top_p,
                    (unsigned long long)step);
      if (!counter.check(se == RELAT_OK && sc == RELAT_OK,
                         "%s: status emulated %d (%s), cpu %d (%s)", what, se,
                         relat_cuda_last_error(), sc, relat_cpu_last_error()))
        continue;
      int differ = 0;
      int64_t first_emu = 0, first_cpu = 0;
      for (int64_t r = 0; r < rows; ++r) {
        if (out_emu[size_t(r)] != out_cpu[size_t(r)] && differ++ == 0)
          first_emu = out_emu[size_t(r)], first_cpu = out_cpu[size_t(r)];
      }
      counter.check(differ == 0, "%s: %d rows differ (first: emulated %lld, cpu %lld) [%.0f ms]",
                    what, differ, (long long)first_emu, (long long)first_cpu, ms);
    }
  }
  counter.check(emu_ws == 0, "sample: the CUDA kernel needs no workspace (%lld)", (long long)emu_ws);
}

void check_special(Counter &counter) {
  const float inf = INFINITY, nan = NAN;
  struct Case {
    const char *name;
    std::vector<float> x;
    Setting s;
  } cases[] = {
      {"masked", {-inf, 2.f, nan, -inf, 2.f, -1.f}, {1.f, 0, 1.f}},
      {"masked top-k", {-inf, 2.f, nan, -inf, 2.f, -1.f}, {1.f, 2, 1.f}},
      {"all -inf", {-inf, -inf, -inf}, {1.f, 0, 1.f}},
      {"+inf", {1.f, 2.f, inf, 3.f, inf, nan}, {1.f, 0, 0.5f}},
      {"all NaN", {nan, nan, nan, nan}, {1.f, 2, 1.f}},
      {"-0 and +0", {-0.f, 0.f, -1.f}, {0.f, 0, 1.f}},
  };
  for (const Case &c : cases) {
    for (uint64_t step = 0; step < 8; ++step) {
      int64_t emu = -1, cpu = -2;
      int64_t ws_bytes = 0;
      relat_cpu_sample_workspace_bytes(1, int64_t(c.x.size()), &ws_bytes);
      std::vector<unsigned char> ws(static_cast<size_t>(ws_bytes));
      const relat_status se = relat_cuda_sample(c.x.data(), 1, int64_t(c.x.size()),
                                                int64_t(c.x.size()), c.s.temperature, c.s.top_k,
                                                c.s.top_p, 7, step, &emu, nullptr, 0, RELAT_F32, nullptr);
      const relat_status sc = relat_cpu_sample(c.x.data(), 1, int64_t(c.x.size()),
                                               int64_t(c.x.size()), c.s.temperature, c.s.top_k,
                                               c.s.top_p, 7, step, &cpu, ws.data(), ws_bytes,
                                               RELAT_F32, nullptr);
      counter.check(se == RELAT_OK && sc == RELAT_OK && emu == cpu && emu >= 0 &&
                        emu < int64_t(c.x.size()),
                    "sample %s step %llu: emulated %lld, cpu %lld", c.name,
                    (unsigned long long)step, (long long)emu, (long long)cpu);
    }
  }
}

void check_errors(Counter &counter) {
  float x[4] = {};
  int64_t out = 0;
  struct Case {
    const char *name;
    const void *logits;
    int64_t rows, vocab, ld;
    float temperature, top_p;
    int64_t *out;
    int dtype;
    relat_status want;
  } cases[] = {
      {"vocab 0", x, 1, 0, 4, 1.f, 1.f, &out, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"vocab 2^23+1", x, 1, (1 << 23) + 1, (1 << 23) + 1, 1.f, 1.f, &out, RELAT_F32,
       RELAT_ERR_INVALID_ARGUMENT},
      {"ld < vocab", x, 1, 4, 3, 1.f, 1.f, &out, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"temperature NaN", x, 1, 4, 4, NAN, 1.f, &out, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"top_p 0", x, 1, 4, 4, 1.f, 0.f, &out, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"logits NULL", nullptr, 1, 4, 4, 1.f, 1.f, &out, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"out NULL", x, 1, 4, 4, 1.f, 1.f, nullptr, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"dtype 9", x, 1, 4, 4, 1.f, 1.f, &out, 9, RELAT_ERR_INVALID_ARGUMENT},
      {"rows 0", nullptr, 0, 4, 4, 1.f, 1.f, nullptr, RELAT_F32, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_sample(c.logits, c.rows, c.vocab, c.ld, c.temperature, 0,
                                              c.top_p, 0, 0, c.out, nullptr, 0,
                                              relat_dtype(c.dtype), nullptr);
    const std::string emu_msg = relat_cuda_last_error();
    // The CPU twin has a workspace; give it one so only the shared checks can fail.
    std::vector<unsigned char> ws(1 << 20);
    const relat_status sc = relat_cpu_sample(c.logits, c.rows, c.vocab, c.ld, c.temperature, 0,
                                             c.top_p, 0, 0, c.out, ws.data(), int64_t(ws.size()),
                                             relat_dtype(c.dtype), nullptr);
    counter.check(se == c.want && sc == c.want && emu_msg == relat_cpu_last_error(),
                  "sample rejects %s: emulated %d, cpu %d, want %d (\"%s\")", c.name, se, sc,
                  c.want, relat_cpu_last_error());
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const size_t all = sizeof kSettings / sizeof kSettings[0];
  // The slowest emulated test (~0.1 s per launch whatever the vocabulary: 512 fibers and many
  // barriers). Under the adversarial runs (reduced_matrix) bf16 and f16 keep two vocabularies and
  // the large ones run in fp32 only: the dtype changes how logits load, not how threads
  // synchronise; the random schedule runs everything.
  const bool reduced = reduced_matrix();
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) {
    for (int64_t vocab : {1, 2}) check(counter, rng, d, 3, vocab, vocab + 1, Kind::kSpread, kSettings, all, 1);
    for (int64_t vocab : {7, 50, 1000, 4099}) {
      if (reduced && d != RELAT_F32 && (vocab == 7 || vocab == 1000)) continue;
      for (Kind kind : {Kind::kSpread, Kind::kTies, Kind::kPeaked})
        check(counter, rng, d, 3, vocab, vocab + (vocab % 3), kind, kSettings, all, vocab == 50 ? 2 : 1);
    }
  }
  // Large vocabularies: the shared-memory path (peaked) and the whole-row path (spread, ties).
  for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
    if (reduced && d != RELAT_F32) continue;
    for (Kind kind : {Kind::kSpread, Kind::kTies, Kind::kPeaked})
      check(counter, rng, d, 2, 40000, 40000, kind, kSettings, all, 1);
  }
  const Setting qwen[] = {{0.6f, 20, 0.95f}, {0.7f, 0, 1.f}, {0.f, 0, 1.f}};
  check(counter, rng, RELAT_F32, 1, 151936, 151936, Kind::kPeaked, qwen, 3, 1);
  if (!reduced) check(counter, rng, RELAT_BF16, 1, 151936, 151936, Kind::kSpread, qwen, 3, 1);
  check_special(counter);
  check_errors(counter);
  return counter.finish();
}
