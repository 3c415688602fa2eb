// RMSNorm: kernels/rmsnorm.cu run on the CPU through the CUDA emulation, against its CPU twin
// native/src/rmsnorm.cpp, on fresh random data with NaN-poisoned outputs, for every dtype and for
// awkward shapes (one row, one column, columns not a multiple of 32 or of the block size).
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t rows, cols;
};

void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool with_rstd, bool in_place) {
  const size_t n = size_t(s.rows * s.cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f);
  const Tensor w = random_tensor(rng, d, size_t(s.cols), 0.5f, 1.5f);
  const float eps = 1e-6f;
  Tensor y_emu(d, n), y_cpu(d, n), r_emu(RELAT_F32, size_t(s.rows)),
      r_cpu(RELAT_F32, size_t(s.rows));
  poison(y_cpu);
  poison(r_emu);
  poison(r_cpu);
  if (in_place)
    y_emu = x;  // y aliases x
  else
    poison(y_emu);

  const auto t0 = std::chrono::steady_clock::now();
  const relat_status se = relat_cuda_rmsnorm_forward(
      in_place ? y_emu.data() : x.data(), w.data(), y_emu.data(),
      with_rstd ? static_cast<float *>(r_emu.data()) : nullptr, s.rows, s.cols, eps, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status sc = relat_cpu_rmsnorm_forward(
      x.data(), w.data(), y_cpu.data(), with_rstd ? static_cast<float *>(r_cpu.data()) : nullptr,
      s.rows, s.cols, eps, d, nullptr);
  char what[160];
  std::snprintf(what, sizeof what, "rmsnorm %s rows=%lld cols=%lld%s%s", dtype_name(d),
                (long long)s.rows, (long long)s.cols, with_rstd ? "" : " rstd=NULL",
                in_place ? " in-place" : "");
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  const Comparison cy = compare(y_emu, y_cpu, tolerance(d));
  counter.check(cy.ok, "%s: y %s [%.0f ms emulated]", what, cy.describe().c_str(), ms);
  if (with_rstd) {
    const Comparison cr = compare(r_emu, r_cpu, tolerance(RELAT_F32));
    counter.check(cr.ok, "%s: rstd %s", what, cr.describe().c_str());
  }
}

// Both libraries must reject the same calls the same way (shared validate.h).
void check_errors(Counter &counter) {
  float buf[4] = {1, 2, 3, 4}, out[4];
  struct Case {
    const char *name;
    const void *x, *w;
    void *y;
    int64_t rows, cols;
    float eps;
    int dtype;
    relat_status want;
  } cases[] = {
      {"cols=0", buf, buf, out, 1, 0, 1e-6f, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"rows<0", buf, buf, out, -1, 4, 1e-6f, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"x=NULL", nullptr, buf, out, 1, 4, 1e-6f, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"eps<0", buf, buf, out, 1, 4, -1.f, RELAT_F32, RELAT_ERR_INVALID_ARGUMENT},
      {"dtype=7", buf, buf, out, 1, 4, 1e-6f, 7, RELAT_ERR_INVALID_ARGUMENT},
      {"rows=0", nullptr, nullptr, nullptr, 0, 4, 1e-6f, RELAT_F32, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_rmsnorm_forward(c.x, c.w, c.y, nullptr, c.rows, c.cols,
                                                       c.eps, relat_dtype(c.dtype), nullptr);
    const relat_status sc = relat_cpu_rmsnorm_forward(c.x, c.w, c.y, nullptr, c.rows, c.cols, c.eps,
                                                      relat_dtype(c.dtype), nullptr);
    counter.check(se == c.want && sc == c.want, "rmsnorm rejects %s: emulated %d, cpu %d, want %d",
                  c.name, se, sc, c.want);
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {
      {1, 1},     {1, 7},    {3, 31},   {2, 32},   {4, 33},    {5, 100},
      {2, 129},   {3, 257},  {7, 1000}, {2, 4095}, {2, 4096},  {3, 4097},
      {1, 12345}, {16, 2560},
      // The largest: 128 rows of Qwen3-8B hidden states, 1024 threads per block (~0.2-2 s,
      // depending on the load of the machine).
      {128, 4096},
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes) check(counter, rng, d, s, true, false);
  for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
    check(counter, rng, d, {5, 300}, false, false);
    check(counter, rng, d, {5, 300}, true, true);
  }
  check_errors(counter);
  return counter.finish();
}
