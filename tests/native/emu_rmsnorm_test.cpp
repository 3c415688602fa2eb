// RMSNorm: kernels/rmsnorm.cu run on the CPU through the CUDA emulation, against its CPU twin
// native/src/rmsnorm.cpp, on fresh random data with NaN-poisoned outputs, for every dtype and for
// awkward shapes (one row, one column, columns not a multiple of 32 or of the block size).
#include <chrono>
#include <iterator>

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

// One row per numeric edge (test_util.h), in warp-per-row (cols <= 1024) and block-per-row mode,
// against the twin at the usual tolerance and against fp64 (x / sqrt(mean(x^2) + eps) * w). The
// fp64 check skips the huge fp32/bf16 rows: there the fp32 sum of squares overflows, rstd is 0
// and y is 0 in both libraries (as in libtorch's fp32 RMSNorm).
void check_edges(Counter &counter, Rng &rng, relat_dtype d, int64_t cols, float eps) {
  const int64_t rows = int64_t(std::size(kEdges));
  const size_t n = size_t(rows * cols);
  Tensor x(d, n);
  for (int64_t r = 0; r < rows; ++r) fill_edge(rng, x, size_t(r * cols), cols, kEdges[r], eps);
  const Tensor w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f);
  Tensor y_emu(d, n), y_cpu(d, n), y_ref(d, n), r_emu(RELAT_F32, size_t(rows)),
      r_cpu(RELAT_F32, size_t(rows));
  for (Tensor *t : {&y_emu, &y_cpu, &r_emu, &r_cpu}) poison(*t);
  const relat_status se =
      relat_cuda_rmsnorm_forward(x.data(), w.data(), y_emu.data(), static_cast<float *>(r_emu.data()),
                                 rows, cols, eps, d, nullptr);
  const relat_status sc =
      relat_cpu_rmsnorm_forward(x.data(), w.data(), y_cpu.data(), static_cast<float *>(r_cpu.data()),
                                rows, cols, eps, d, nullptr);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK,
                     "rmsnorm edges %s cols=%lld: status emulated %d (%s), cpu %d", dtype_name(d),
                     (long long)cols, se, relat_cuda_last_error(), sc))
    return;
  for (int64_t r = 0; r < rows; ++r) {
    const size_t o = size_t(r * cols);
    char what[128];
    std::snprintf(what, sizeof what, "rmsnorm edges %s cols=%lld eps=%g, %s row", dtype_name(d),
                  (long long)cols, double(eps), edge_name(kEdges[r]));
    const Comparison cy = compare(static_cast<const char *>(y_emu.data()) + o * dtype_size(d),
                                  static_cast<const char *>(y_cpu.data()) + o * dtype_size(d), d,
                                  size_t(cols), tolerance(d));
    const Comparison cr = compare(static_cast<const float *>(r_emu.data()) + r,
                                  static_cast<const float *>(r_cpu.data()) + r, RELAT_F32, 1,
                                  tolerance(RELAT_F32));
    counter.check(cy.ok && cr.ok, "%s: y %s, rstd %s (%g / %g)", what, cy.describe().c_str(),
                  cr.describe().c_str(), double(r_emu.at(size_t(r))), double(r_cpu.at(size_t(r))));
    if (kEdges[r] == Edge::kHuge && d != RELAT_F16) continue;
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += double(x.at(o + size_t(c))) * x.at(o + size_t(c));
    const double rstd = 1.0 / std::sqrt(ss / double(cols) + double(eps));
    for (int64_t c = 0; c < cols; ++c)
      store(y_ref.data(), d, o + size_t(c), float(x.at(o + size_t(c)) * rstd * w.at(size_t(c))));
    const Comparison cd = compare(static_cast<const char *>(y_emu.data()) + o * dtype_size(d),
                                  static_cast<const char *>(y_ref.data()) + o * dtype_size(d), d,
                                  size_t(cols), tolerance(d));
    counter.check(cd.ok, "%s: y against fp64 %s", what, cd.describe().c_str());
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
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (int64_t cols : {128, 100, 4096, 2050}) {
      check_edges(counter, rng, d, cols, 1e-6f);
      check_edges(counter, rng, d, cols, 1e-5f);
    }
  check_errors(counter);
  return counter.finish();
}
