// RMSNorm backward, residual add + RMSNorm forward and backward (kernels/rmsnorm.cu) run on the
// CPU through the CUDA emulation, against the CPU twins (native/src/rmsnorm.cpp): fresh random
// data, NaN-poisoned outputs and workspaces, every dtype, one row, widths off every vector and
// block size, both launch modes (a warp per row for cols <= 1024, a block per row above), dweight
// partials in shared memory and in the global workspace (cols * 4 > 40 KiB), QK-norm shapes
// (rows = T*H, cols = 128), and aliasing (dx = dy, s = r, ds = ds_next).
#include <chrono>
#include <iterator>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t rows, cols;
};

// dweight sums rows*cols terms of |dy * x * rstd| <~ 2 in a different order in each library.
Tolerance dweight_tolerance(int64_t rows) { return {1e-5, 2e-6 * double(rows)}; }

int64_t workspace_bytes(bool emu, int64_t rows, int64_t cols) {
  int64_t bytes = -1;
  const relat_status s = emu ? relat_cuda_rmsnorm_backward_workspace_bytes(rows, cols, &bytes)
                             : relat_cpu_rmsnorm_backward_workspace_bytes(rows, cols, &bytes);
  return s == RELAT_OK ? bytes : -1;
}

void check_backward(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool residual,
                    bool with_dweight, bool in_place) {
  const size_t n = size_t(s.rows * s.cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f);
  const Tensor w = random_tensor(rng, d, size_t(s.cols), 0.5f, 1.5f);
  const Tensor dy = random_tensor(rng, d, n, -1.f, 1.f);
  const Tensor dnext = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor rstd(RELAT_F32, size_t(s.rows)), y(d, n);
  relat_cpu_rmsnorm_forward(x.data(), w.data(), y.data(), static_cast<float *>(rstd.data()),
                            s.rows, s.cols, 1e-6f, d, nullptr);

  const int64_t ws_emu = workspace_bytes(true, s.rows, s.cols);
  const int64_t ws_cpu = workspace_bytes(false, s.rows, s.cols);
  Tensor work_emu(RELAT_F32, size_t(ws_emu / 4)), work_cpu(RELAT_F32, size_t(ws_cpu / 4));
  poison(work_emu);  // the contents on entry must not matter
  poison(work_cpu);
  Tensor dw_emu(RELAT_F32, size_t(s.cols)), dw_cpu(RELAT_F32, size_t(s.cols));
  poison(dw_emu);
  poison(dw_cpu);
  Tensor dx_emu(d, n), dx_cpu(d, n);
  poison(dx_cpu);
  // In place: dx over dy (plain), ds over ds_next (residual).
  if (in_place)
    dx_emu = residual ? dnext : dy;
  else
    poison(dx_emu);
  const void *dy_emu = !residual && in_place ? dx_emu.data() : dy.data();
  const void *dn_emu = residual && in_place ? dx_emu.data() : dnext.data();
  float *dwe = with_dweight ? static_cast<float *>(dw_emu.data()) : nullptr;
  float *dwc = with_dweight ? static_cast<float *>(dw_cpu.data()) : nullptr;
  const float *r = static_cast<const float *>(rstd.data());

  const auto t0 = std::chrono::steady_clock::now();
  relat_status se, sc;
  if (residual) {
    se = relat_cuda_add_rmsnorm_backward(dy.data(), dn_emu, x.data(), w.data(), r, dx_emu.data(),
                                         dwe, work_emu.data(), ws_emu, s.rows, s.cols, d, nullptr);
    sc = relat_cpu_add_rmsnorm_backward(dy.data(), dnext.data(), x.data(), w.data(), r,
                                        dx_cpu.data(), dwc, work_cpu.data(), ws_cpu, s.rows,
                                        s.cols, d, nullptr);
  } else {
    se = relat_cuda_rmsnorm_backward(dy_emu, x.data(), w.data(), r, dx_emu.data(), dwe,
                                     work_emu.data(), ws_emu, s.rows, s.cols, d, nullptr);
    sc = relat_cpu_rmsnorm_backward(dy.data(), x.data(), w.data(), r, dx_cpu.data(), dwc,
                                    work_cpu.data(), ws_cpu, s.rows, s.cols, d, nullptr);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  char what[192];
  std::snprintf(what, sizeof what, "%s %s rows=%lld cols=%lld%s%s",
                residual ? "add_rmsnorm_backward" : "rmsnorm_backward", dtype_name(d),
                (long long)s.rows, (long long)s.cols, with_dweight ? " +dweight" : "",
                in_place ? " in-place" : "");
  if (!counter.check(ws_emu >= s.cols * 4 && ws_cpu >= s.cols * 4 && se == RELAT_OK &&
                         sc == RELAT_OK,
                     "%s: workspace %lld/%lld, status emulated %d (%s), cpu %d (%s)", what,
                     (long long)ws_emu, (long long)ws_cpu, se, relat_cuda_last_error(), sc,
                     relat_cpu_last_error()))
    return;
  const Comparison cx = compare(dx_emu, dx_cpu, tolerance(d));
  counter.check(cx.ok, "%s: dx %s [%.0f ms emulated]", what, cx.describe().c_str(), ms);
  if (with_dweight) {
    const Comparison cw = compare(dw_emu, dw_cpu, dweight_tolerance(s.rows));
    counter.check(cw.ok, "%s: dweight %s", what, cw.describe().c_str());
  }
}

void check_add_forward(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool in_place) {
  const size_t n = size_t(s.rows * s.cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f);
  const Tensor r = random_tensor(rng, d, n, -3.f, 3.f);
  const Tensor w = random_tensor(rng, d, size_t(s.cols), 0.5f, 1.5f);
  Tensor s_emu(d, n), s_cpu(d, n), y_emu(d, n), y_cpu(d, n), rs_emu(RELAT_F32, size_t(s.rows)),
      rs_cpu(RELAT_F32, size_t(s.rows));
  poison(s_cpu);
  poison(y_emu);
  poison(y_cpu);
  poison(rs_emu);
  poison(rs_cpu);
  if (in_place)
    s_emu = r;  // s over r: the residual stream updated in place
  else
    poison(s_emu);
  const relat_status se = relat_cuda_add_rmsnorm_forward(
      x.data(), in_place ? s_emu.data() : r.data(), s_emu.data(), w.data(), y_emu.data(),
      static_cast<float *>(rs_emu.data()), s.rows, s.cols, 1e-6f, d, nullptr);
  const relat_status sc = relat_cpu_add_rmsnorm_forward(
      x.data(), r.data(), s_cpu.data(), w.data(), y_cpu.data(), static_cast<float *>(rs_cpu.data()),
      s.rows, s.cols, 1e-6f, d, nullptr);
  char what[160];
  std::snprintf(what, sizeof what, "add_rmsnorm_forward %s rows=%lld cols=%lld%s", dtype_name(d),
                (long long)s.rows, (long long)s.cols, in_place ? " in-place" : "");
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  // s: the same rounding of the same fp32 sum, so the same bits.
  const bool s_same = std::memcmp(s_emu.data(), s_cpu.data(), s_cpu.size_bytes()) == 0;
  const Comparison cy = compare(y_emu, y_cpu, tolerance(d));
  const Comparison cr = compare(rs_emu, rs_cpu, tolerance(RELAT_F32));
  counter.check(s_same, "%s: s %s", what, s_same ? "identical" : "differs");
  counter.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  counter.check(cr.ok, "%s: rstd %s", what, cr.describe().c_str());
}

// Numeric edges (test_util.h), one row each, through the residual forward and both backwards.
// Forward: s = x + r with r = 0 (s is the edge row) and, on one extra row, r = -x (s cancels to
// exact zeros). Backward: x is the edge row, rstd comes from the twin's forward (0 for the huge
// fp32/bf16 rows, whose fp32 sum of squares overflows), dy is ordinary.
void check_edges(Counter &counter, Rng &rng, relat_dtype d, int64_t cols) {
  const float eps = 1e-6f;
  const int64_t rows = int64_t(std::size(kEdges)) + 1;
  const size_t n = size_t(rows * cols);
  Tensor x(d, n), r(d, n);
  for (int64_t i = 0; i < rows - 1; ++i) {
    fill_edge(rng, x, size_t(i * cols), cols, kEdges[i], eps);
    fill_edge(rng, r, size_t(i * cols), cols, Edge::kZero, eps);
  }
  const Tensor tail = random_tensor(rng, d, size_t(cols), -3.f, 3.f);
  for (int64_t c = 0; c < cols; ++c) {
    store(x.data(), d, size_t((rows - 1) * cols + c), tail.at(size_t(c)));
    store(r.data(), d, size_t((rows - 1) * cols + c), -tail.at(size_t(c)));
  }
  const Tensor w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f);
  const Tensor dy = random_tensor(rng, d, n, -1.f, 1.f);
  const Tensor dnext = random_tensor(rng, d, n, -1.f, 1.f);
  char what[128];
  std::snprintf(what, sizeof what, "norm edges %s rows=%lld cols=%lld (rows: zero, ms=eps, "
                "ms<<eps, tiny, large, huge, x+r=0)", dtype_name(d), (long long)rows,
                (long long)cols);

  Tensor s_emu(d, n), s_cpu(d, n), y_emu(d, n), y_cpu(d, n), rs_emu(RELAT_F32, size_t(rows)),
      rs_cpu(RELAT_F32, size_t(rows));
  for (Tensor *t : {&s_emu, &s_cpu, &y_emu, &y_cpu, &rs_emu, &rs_cpu}) poison(*t);
  const relat_status fe = relat_cuda_add_rmsnorm_forward(
      x.data(), r.data(), s_emu.data(), w.data(), y_emu.data(),
      static_cast<float *>(rs_emu.data()), rows, cols, eps, d, nullptr);
  const relat_status fc = relat_cpu_add_rmsnorm_forward(
      x.data(), r.data(), s_cpu.data(), w.data(), y_cpu.data(),
      static_cast<float *>(rs_cpu.data()), rows, cols, eps, d, nullptr);
  if (!counter.check(fe == RELAT_OK && fc == RELAT_OK, "%s: forward status emulated %d (%s), cpu %d",
                     what, fe, relat_cuda_last_error(), fc))
    return;
  const Comparison cy = compare(y_emu, y_cpu, tolerance(d));
  const Comparison cr = compare(rs_emu, rs_cpu, tolerance(RELAT_F32));
  counter.check(cy.ok && cr.ok, "%s: add_rmsnorm_forward y %s, rstd %s", what,
                cy.describe().c_str(), cr.describe().c_str());

  const float *rstd = static_cast<const float *>(rs_cpu.data());
  for (bool residual : {false, true}) {
    const int64_t ws_emu = workspace_bytes(true, rows, cols), ws_cpu = workspace_bytes(false, rows, cols);
    Tensor work_emu(RELAT_F32, size_t(ws_emu / 4)), work_cpu(RELAT_F32, size_t(ws_cpu / 4)),
        dw_emu(RELAT_F32, size_t(cols)), dw_cpu(RELAT_F32, size_t(cols)), dx_emu(d, n), dx_cpu(d, n);
    for (Tensor *t : {&work_emu, &work_cpu, &dw_emu, &dw_cpu, &dx_emu, &dx_cpu}) poison(*t);
    float *dwe = static_cast<float *>(dw_emu.data()), *dwc = static_cast<float *>(dw_cpu.data());
    relat_status be, bc;
    if (residual) {
      be = relat_cuda_add_rmsnorm_backward(dy.data(), dnext.data(), s_cpu.data(), w.data(), rstd,
                                           dx_emu.data(), dwe, work_emu.data(), ws_emu, rows, cols,
                                           d, nullptr);
      bc = relat_cpu_add_rmsnorm_backward(dy.data(), dnext.data(), s_cpu.data(), w.data(), rstd,
                                          dx_cpu.data(), dwc, work_cpu.data(), ws_cpu, rows, cols,
                                          d, nullptr);
    } else {
      be = relat_cuda_rmsnorm_backward(dy.data(), s_cpu.data(), w.data(), rstd, dx_emu.data(), dwe,
                                       work_emu.data(), ws_emu, rows, cols, d, nullptr);
      bc = relat_cpu_rmsnorm_backward(dy.data(), s_cpu.data(), w.data(), rstd, dx_cpu.data(), dwc,
                                      work_cpu.data(), ws_cpu, rows, cols, d, nullptr);
    }
    const char *op = residual ? "add_rmsnorm_backward" : "rmsnorm_backward";
    if (!counter.check(be == RELAT_OK && bc == RELAT_OK, "%s: %s status emulated %d (%s), cpu %d",
                       what, op, be, relat_cuda_last_error(), bc))
      continue;
    // dx = rstd*w*dy - x*rstd^3*dot/cols (+ ds_next) is a difference of terms of the row's scale
    // (rstd*|dy| ~ 700 on the ms=eps row): the absolute part of the tolerance scales with the row.
    // fp64 with the same rstd tells which library drifts when they disagree.
    bool dx_ok = true;
    double worst_emu = 0, worst_cpu = 0;
    std::string first_bad;
    for (int64_t i = 0; i < rows; ++i) {
      const size_t o = size_t(i * cols);
      double dot = 0, scale = 0;
      for (int64_t c = 0; c < cols; ++c)
        dot += double(dy.at(o + size_t(c))) * w.at(size_t(c)) * s_cpu.at(o + size_t(c));
      const double rs = rstd[i], k = dot * rs * rs * rs / double(cols);
      std::vector<double> ref(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) {
        ref[size_t(c)] = rs * w.at(size_t(c)) * dy.at(o + size_t(c)) - k * s_cpu.at(o + size_t(c)) +
                         (residual ? double(dnext.at(o + size_t(c))) : 0.0);
        scale = std::max(scale, std::fabs(rs * w.at(size_t(c)) * dy.at(o + size_t(c))));
      }
      const Tolerance t = tolerance(d);
      const Tolerance row_tol{t.rtol, t.atol * std::max(1.0, scale)};
      const Comparison c = compare(dx_emu.bytes.data() + o * dtype_size(d),
                                   dx_cpu.bytes.data() + o * dtype_size(d), d, size_t(cols), row_tol);
      for (int64_t j = 0; j < cols; ++j) {
        const double bound = row_tol.atol + row_tol.rtol * std::fabs(ref[size_t(j)]);
        worst_emu = std::max(worst_emu, std::fabs(dx_emu.at(o + size_t(j)) - ref[size_t(j)]) / bound);
        worst_cpu = std::max(worst_cpu, std::fabs(dx_cpu.at(o + size_t(j)) - ref[size_t(j)]) / bound);
      }
      if (!c.ok && dx_ok) first_bad = std::string(i < rows - 1 ? edge_name(kEdges[i]) : "x+r=0") +
                                      " row: " + c.describe();
      dx_ok = dx_ok && c.ok;
    }
    const Comparison cw = compare(dw_emu, dw_cpu, dweight_tolerance(rows));
    counter.check(dx_ok && cw.ok,
                  "%s: %s dx %s (error against fp64: emulated %.3g, cpu %.3g of tolerance), "
                  "dweight %s",
                  what, op, dx_ok ? "ok" : first_bad.c_str(), worst_emu, worst_cpu,
                  cw.describe().c_str());
  }
}

// Both libraries reject the same calls (validate.h) and treat rows = 0 alike.
void check_errors(Counter &counter) {
  float buf[64] = {}, out[64];
  const int64_t ws = workspace_bytes(true, 4, 16), wc = workspace_bytes(false, 4, 16);
  struct Case {
    const char *name;
    const void *dy, *x;
    float *dweight;
    int64_t workspace_bytes_emu, workspace_bytes_cpu, rows, cols;
    relat_status want;
  } cases[] = {
      {"dy=NULL", nullptr, buf, nullptr, 0, 0, 4, 16, RELAT_ERR_INVALID_ARGUMENT},
      {"cols=0", buf, buf, nullptr, 0, 0, 4, 0, RELAT_ERR_INVALID_ARGUMENT},
      {"workspace too small", buf, buf, out, ws - 4, wc - 4, 4, 16, RELAT_ERR_INVALID_ARGUMENT},
      {"no dweight, no workspace", buf, buf, nullptr, 0, 0, 4, 16, RELAT_OK},
  };
  static float work[4096];
  for (const Case &c : cases) {
    float dx[64];
    const relat_status se = relat_cuda_rmsnorm_backward(
        c.dy, c.x, buf, buf, dx, c.dweight, work, c.workspace_bytes_emu, c.rows, c.cols, RELAT_F32,
        nullptr);
    const relat_status sc = relat_cpu_rmsnorm_backward(c.dy, c.x, buf, buf, dx, c.dweight, work,
                                                       c.workspace_bytes_cpu, c.rows, c.cols,
                                                       RELAT_F32, nullptr);
    counter.check(se == c.want && sc == c.want,
                  "rmsnorm_backward rejects %s: emulated %d, cpu %d, want %d", c.name, se, sc,
                  c.want);
  }
  // rows = 0 with dweight: dweight is all zeros on both.
  float dw_emu[5], dw_cpu[5];
  poison(dw_emu, RELAT_F32, 5);
  poison(dw_cpu, RELAT_F32, 5);
  const relat_status se = relat_cuda_rmsnorm_backward(nullptr, nullptr, nullptr, nullptr, nullptr,
                                                      dw_emu, work, sizeof work, 0, 5, RELAT_F32,
                                                      nullptr);
  const relat_status sc = relat_cpu_rmsnorm_backward(nullptr, nullptr, nullptr, nullptr, nullptr,
                                                     dw_cpu, work, sizeof work, 0, 5, RELAT_F32,
                                                     nullptr);
  bool zeros = true;
  for (int i = 0; i < 5; ++i) zeros = zeros && dw_emu[i] == 0.f && dw_cpu[i] == 0.f;
  counter.check(se == RELAT_OK && sc == RELAT_OK && zeros, "rmsnorm_backward rows=0: dweight = 0");
  const relat_status ae = relat_cuda_add_rmsnorm_forward(buf, buf, out, buf, out, nullptr, 1, 16,
                                                         1e-6f, RELAT_F32, nullptr);
  const relat_status ac = relat_cpu_add_rmsnorm_forward(buf, buf, out, buf, out, nullptr, 1, 16,
                                                        1e-6f, RELAT_F32, nullptr);
  counter.check(ae == RELAT_ERR_INVALID_ARGUMENT && ac == RELAT_ERR_INVALID_ARGUMENT,
                "add_rmsnorm_forward rejects y == s: emulated %d, cpu %d", ae, ac);
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {
      {1, 1},   {1, 7},    {3, 31},  {4, 33},   {5, 100},   {2, 129},   {3, 257},
      {7, 1000}, {3, 1024}, {2, 4097}, {40, 2048},
      {64, 128},   // QK-norm: T*H rows of 128, several warps per block
      {300, 128},  // ... and several dweight partial blocks
      {2, 12288},  // a row of fp32 partials over 40 KiB: the accumulator lives in the workspace
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes) {
      check_backward(counter, rng, d, s, false, true, false);
      check_backward(counter, rng, d, s, true, true, false);
      check_add_forward(counter, rng, d, s, false);
    }
  for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
    for (const Shape &s : {Shape{5, 300}, Shape{17, 128}, Shape{3, 2050}}) {
      check_backward(counter, rng, d, s, false, false, false);
      check_backward(counter, rng, d, s, true, false, false);
      check_backward(counter, rng, d, s, false, true, true);
      check_backward(counter, rng, d, s, true, false, true);
      check_add_forward(counter, rng, d, s, true);
    }
  }
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (int64_t cols : {128, 300, 4096}) check_edges(counter, rng, d, cols);
  check_errors(counter);
  return counter.finish();
}
