// Few-row linear, forward and backward (kernels/gemv.cu run through the CUDA emulation, and the CPU
// twin native/src/gemv.cpp), each against an fp64 reference: fresh random data, NaN-poisoned
// outputs, every dtype, 0 to 8 rows, lengths off every vector width and block size.
// An output is a sum of signed products, so it is compared at the scale of its terms,
// sum |x * w|: relative to the output itself a cancelling sum has no useful bound.
#include <cmath>
#include <string>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t rows, n, k;
};

// Accumulation in fp32 over up to ~4k terms, then one rounding to the storage type.
double term_tolerance(relat_dtype d) {
  if (d == RELAT_BF16) return 8e-3;  // 2^-8 output rounding, 2x margin
  if (d == RELAT_F16) return 2e-3;   // 2^-10
  return 2e-5;
}

void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool backward) {
  const int64_t in = backward ? s.n : s.k, out = backward ? s.k : s.n;
  const Tensor x = random_tensor(rng, d, size_t(std::max<int64_t>(1, s.rows * in)), -1.f, 1.f);
  const Tensor w = random_tensor(rng, d, size_t(s.n * s.k), -1.f, 1.f);
  const size_t ny = size_t(std::max<int64_t>(1, s.rows * out));
  Tensor y_emu(d, ny), y_cpu(d, ny);
  poison(y_emu);
  poison(y_cpu);
  auto run = [&](bool cuda, Tensor &y) {
    if (backward)
      return cuda ? relat_cuda_gemv_backward(x.data(), w.data(), y.data(), s.rows, s.n, s.k, d,
                                             nullptr)
                  : relat_cpu_gemv_backward(x.data(), w.data(), y.data(), s.rows, s.n, s.k, d,
                                            nullptr);
    return cuda
               ? relat_cuda_gemv_forward(x.data(), w.data(), y.data(), s.rows, s.n, s.k, d, nullptr)
               : relat_cpu_gemv_forward(x.data(), w.data(), y.data(), s.rows, s.n, s.k, d, nullptr);
  };
  char what[160];
  std::snprintf(what, sizeof what, "gemv_%s %s rows=%lld n=%lld k=%lld",
                backward ? "backward" : "forward", dtype_name(d), (long long)s.rows, (long long)s.n,
                (long long)s.k);
  const relat_status se = run(true, y_emu), sc = run(false, y_cpu);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  const double tol = term_tolerance(d);
  double worst_emu = 0, worst_cpu = 0;
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0, scale = 0;
      for (int64_t i = 0; i < in; ++i) {
        const double xv = load(x.data(), d, size_t(r * in + i));
        const double wv = backward ? load(w.data(), d, size_t(i * s.k + o))
                                   : load(w.data(), d, size_t(o * s.k + i));
        sum += xv * wv;
        scale += std::fabs(xv * wv);
      }
      const size_t at = size_t(r * out + o);
      const double bound = tol * scale + 1e-30;
      const double e_emu = std::fabs(load(y_emu.data(), d, at) - sum) / bound;
      const double e_cpu = std::fabs(load(y_cpu.data(), d, at) - sum) / bound;
      worst_emu = std::isnan(e_emu) || e_emu > worst_emu ? e_emu : worst_emu;  // NaN sticks
      worst_cpu = std::isnan(e_cpu) || e_cpu > worst_cpu ? e_cpu : worst_cpu;
    }
  counter.check(worst_emu <= 1.0, "%s: emulated CUDA, worst error %.3g of the bound", what,
                worst_emu);
  counter.check(worst_cpu <= 1.0, "%s: CPU twin, worst error %.3g of the bound", what, worst_cpu);
  if (s.rows == 0)  // nothing may be written
    counter.check(std::isnan(load(y_emu.data(), d, 0)) && std::isnan(load(y_cpu.data(), d, 0)),
                  "%s: rows=0 leaves y untouched", what);
}

void check_errors(Counter &counter) {
  float buf[64] = {}, out[64];
  struct Case {
    const char *name;
    const void *x;
    int64_t rows, n, k;
    relat_dtype d;
    relat_status want;
  } cases[] = {
      {"rows=9", buf, 9, 2, 2, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"rows=-1", buf, -1, 2, 2, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"n=0", buf, 1, 0, 2, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"k=0", buf, 1, 2, 0, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"x=NULL", nullptr, 1, 2, 2, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"rows=0, x=NULL", nullptr, 0, 2, 2, RELAT_F32, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status fe = relat_cuda_gemv_forward(c.x, buf, out, c.rows, c.n, c.k, c.d, nullptr);
    const relat_status fc = relat_cpu_gemv_forward(c.x, buf, out, c.rows, c.n, c.k, c.d, nullptr);
    const relat_status be = relat_cuda_gemv_backward(c.x, buf, out, c.rows, c.n, c.k, c.d, nullptr);
    const relat_status bc = relat_cpu_gemv_backward(c.x, buf, out, c.rows, c.n, c.k, c.d, nullptr);
    counter.check(fe == c.want && fc == c.want && be == c.want && bc == c.want,
                  "gemv rejects %s: emulated %d/%d, cpu %d/%d, want %d", c.name, fe, be, fc, bc,
                  c.want);
  }
  relat_cpu_gemv_forward(buf, buf, out, 9, 2, 2, RELAT_F32, nullptr);
  counter.check(std::string(relat_cpu_last_error()).find("rows=9") != std::string::npos,
                "gemv's message names the bad rows: %s", relat_cpu_last_error());
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {{1, 1, 1},     {1, 7, 33},    {3, 13, 64},   {8, 37, 129}, {2, 300, 1024},
                          {5, 1030, 96}, {8, 64, 4100}, {1, 513, 257}, {4, 5, 2048}, {0, 4, 8}};
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes)
      for (bool backward : {false, true}) check(counter, rng, d, s, backward);
  check_errors(counter);
  return counter.finish();
}
