// Latent step: kernels/latent_step.cu (soft forward/backward, row rescale forward/backward) run on
// the CPU through the CUDA emulation, against the CPU twins of native/src/latent_step.cpp, on fresh
// random data with NaN-poisoned outputs: every dtype, batch 1 and past the kernels' group of 8,
// hidden sizes off the 16-byte vectors (scalar path) and on them, vocabularies off the 64-row tile,
// tied embeddings, a width whose backward needs the opt-in shared memory, rows below the rescale's
// norm clamp, in-place rescale, and the shared checks.
#include <chrono>
#include <iterator>

#include "test_util.h"

using namespace relat::test;

namespace {

double bound(relat_dtype d) { return d == RELAT_F32 ? 1e-5 : d == RELAT_BF16 ? 1e-2 : 1e-3; }

// The spacing of the dtype's subnormals: below the normal range a value keeps fewer bits, so two
// correct roundings of nearly equal results can differ by a step however small the relative bound
// (a huge f16 row: the rescale's dx is ~target / ||x|| ~ 4e-7, seven steps of 2^-24).
double subnormal_step(relat_dtype d) {
  return d == RELAT_F16 ? std::ldexp(1.0, -24) : d == RELAT_BF16 ? std::ldexp(1.0, -133)
                                                                 : std::ldexp(1.0, -149);
}

// max |a - b| / max |b| within the bound (plus two subnormal steps), no NaN.
bool close(const Tensor &a, const Tensor &b, double tol, double *err_out) {
  double err = 0, scale = 0;
  bool nan = false;
  for (size_t i = 0; i < b.n; ++i) {
    const double x = a.at(i), y = b.at(i);
    nan = nan || std::isnan(x) || std::isnan(y);
    err = std::max(err, std::fabs(x - y));
    scale = std::max(scale, std::fabs(y));
  }
  *err_out = scale > 0 ? err / scale : err;
  return !nan && err <= tol * scale + 2 * subnormal_step(a.dtype);
}

struct Shape {
  int64_t batch, hidden, vocab;
};

void check_soft(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool tied, float tau) {
  const size_t nh = size_t(s.batch * s.hidden), nu = size_t(s.vocab * s.hidden);
  const float scale = 2.f / std::sqrt(float(s.hidden));
  const Tensor h = random_tensor(rng, d, nh, -1.5f, 1.5f);
  const Tensor u = random_tensor(rng, d, nu, -scale, scale);
  const Tensor emb_own = random_tensor(rng, d, nu, -scale, scale);
  const Tensor &emb = tied ? u : emb_own;
  const Tensor de = random_tensor(rng, d, nh, -1.f, 1.f);
  const float inv_tau = 1.f / tau;

  int64_t fe = 0, be = 0, fc = 0, bc = 0;
  relat_cuda_latent_soft_workspace_bytes(s.batch, s.hidden, s.vocab, d, &fe, &be);
  relat_cpu_latent_soft_workspace_bytes(s.batch, s.hidden, s.vocab, d, &fc, &bc);
  std::vector<unsigned char> wfe(size_t(std::max<int64_t>(fe, 1)), 0xff),
      wbe(size_t(std::max<int64_t>(be, 1)), 0xff), wfc(size_t(std::max<int64_t>(fc, 1))),
      wbc(size_t(std::max<int64_t>(bc, 1)));
  Tensor e_emu(d, nh), e_cpu(d, nh), lse_emu(RELAT_F32, size_t(s.batch)),
      lse_cpu(RELAT_F32, size_t(s.batch)), e32_emu(RELAT_F32, nh), e32_cpu(RELAT_F32, nh),
      dh_emu(d, nh), dh_cpu(d, nh);
  for (Tensor *t : {&e_emu, &e_cpu, &lse_emu, &lse_cpu, &e32_emu, &e32_cpu, &dh_emu, &dh_cpu}) poison(*t);

  const auto t0 = std::chrono::steady_clock::now();
  relat_status se = relat_cuda_latent_soft_forward(
      h.data(), u.data(), emb.data(), e_emu.data(), static_cast<float *>(lse_emu.data()),
      static_cast<float *>(e32_emu.data()), s.batch, s.hidden, s.vocab, inv_tau, wfe.data(), fe, d,
      nullptr);
  if (se == RELAT_OK)
    se = relat_cuda_latent_soft_backward(
        h.data(), u.data(), emb.data(), static_cast<const float *>(lse_emu.data()),
        static_cast<const float *>(e32_emu.data()), de.data(), dh_emu.data(), s.batch, s.hidden,
        s.vocab, inv_tau, wbe.data(), be, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  relat_status sc = relat_cpu_latent_soft_forward(
      h.data(), u.data(), emb.data(), e_cpu.data(), static_cast<float *>(lse_cpu.data()),
      static_cast<float *>(e32_cpu.data()), s.batch, s.hidden, s.vocab, inv_tau, wfc.data(), fc, d,
      nullptr);
  if (sc == RELAT_OK)
    sc = relat_cpu_latent_soft_backward(
        h.data(), u.data(), emb.data(), static_cast<const float *>(lse_cpu.data()),
        static_cast<const float *>(e32_cpu.data()), de.data(), dh_cpu.data(), s.batch, s.hidden,
        s.vocab, inv_tau, wbc.data(), bc, d, nullptr);
  char what[200];
  std::snprintf(what, sizeof what, "latent_soft %s B=%lld d=%lld V=%lld tau=%.2f%s", dtype_name(d),
                (long long)s.batch, (long long)s.hidden, (long long)s.vocab, tau,
                tied ? " tied" : "");
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  double err = 0;
  bool ok;
  ok = close(e_emu, e_cpu, bound(d), &err);
  counter.check(ok, "%s: e error %.3g [%.0f ms emulated]", what,
                err, ms);
  ok = close(e32_emu, e32_cpu, 1e-5, &err);
  counter.check(ok, "%s: e32 error %.3g", what, err);
  ok = close(lse_emu, lse_cpu, 1e-5, &err);
  counter.check(ok, "%s: lse error %.3g", what, err);
  ok = close(dh_emu, dh_cpu, bound(d), &err);
  counter.check(ok, "%s: dh error %.3g", what, err);
}

void check_rescale(Counter &counter, Rng &rng, relat_dtype d, int64_t rows, int64_t cols,
                   float amplitude, bool in_place) {
  const size_t n = size_t(rows * cols);
  const float target = 1.7f, min_norm = 1e-6f;
  const Tensor x = random_tensor(rng, d, n, -amplitude, amplitude);
  const Tensor dy = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor y_emu(d, n), y_cpu(d, n), dx_emu(d, n), dx_cpu(d, n);
  poison(y_cpu);
  poison(dx_cpu);
  if (in_place) {
    y_emu = x;
    dx_emu = dy;
  } else {
    poison(y_emu);
    poison(dx_emu);
  }
  const relat_status se1 = relat_cuda_row_rescale_forward(in_place ? y_emu.data() : x.data(),
                                                          y_emu.data(), rows, cols, target,
                                                          min_norm, d, nullptr);
  const relat_status se2 = relat_cuda_row_rescale_backward(
      x.data(), in_place ? dx_emu.data() : dy.data(), dx_emu.data(), rows, cols, target, min_norm,
      d, nullptr);
  const relat_status sc1 =
      relat_cpu_row_rescale_forward(x.data(), y_cpu.data(), rows, cols, target, min_norm, d, nullptr);
  const relat_status sc2 = relat_cpu_row_rescale_backward(x.data(), dy.data(), dx_cpu.data(), rows,
                                                          cols, target, min_norm, d, nullptr);
  char what[160];
  std::snprintf(what, sizeof what, "row_rescale %s rows=%lld cols=%lld |x|<=%g%s", dtype_name(d),
                (long long)rows, (long long)cols, amplitude, in_place ? " in-place" : "");
  if (!counter.check(se1 == RELAT_OK && se2 == RELAT_OK && sc1 == RELAT_OK && sc2 == RELAT_OK,
                     "%s: status %d %d / %d %d (%s)", what, se1, se2, sc1, sc2,
                     relat_cuda_last_error()))
    return;
  const Comparison cy = compare(y_emu, y_cpu, tolerance(d));
  counter.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  double err = 0;
  bool ok;
  ok = close(dx_emu, dx_cpu, bound(d), &err);
  counter.check(ok, "%s: dx error %.3g", what, err);
}

Tensor row_of(const Tensor &t, int64_t row, int64_t cols) {
  Tensor r(t.dtype, size_t(cols));
  std::memcpy(r.data(), static_cast<const char *>(t.data()) + size_t(row * cols) * dtype_size(t.dtype),
              r.size_bytes());
  return r;
}

// Numeric edges of the rescale, one row each, checked row by row: the rows of test_util.h (zero and
// tiny rows fall under the norm clamp, the huge fp32/bf16 row's fp32 sum of squares overflows) and
// rows whose norm is the clamp exactly and one part in 2^10 above and below it (a single non-zero
// element, so both libraries compute the same norm and take the same branch of the backward).
void check_rescale_edges(Counter &counter, Rng &rng, relat_dtype d, int64_t cols) {
  const float target = 1.7f, min_norm = 1e-6f;
  const int64_t base = int64_t(std::size(kEdges)), rows = base + 3;
  const size_t n = size_t(rows * cols);
  Tensor x(d, n);
  for (int64_t r = 0; r < base; ++r) fill_edge(rng, x, size_t(r * cols), cols, kEdges[r], 1e-6f);
  const float clamp_rows[] = {min_norm, min_norm * (1.f + 1.f / 1024), min_norm * (1.f - 1.f / 1024)};
  const float unit = d == RELAT_F16 ? 1024.f : 1.f;  // f16: 1e-6 is subnormal; scale the clamp up
  for (int64_t r = base; r < rows; ++r) {
    fill_edge(rng, x, size_t(r * cols), cols, Edge::kZero, 0.f);
    store(x.data(), d, size_t(r * cols + rng.integer(0, cols - 1)), clamp_rows[r - base] * unit);
  }
  const Tensor dy = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor y_emu(d, n), y_cpu(d, n), dx_emu(d, n), dx_cpu(d, n);
  for (Tensor *t : {&y_emu, &y_cpu, &dx_emu, &dx_cpu}) poison(*t);
  const float mn = min_norm * unit;
  const relat_status se1 =
      relat_cuda_row_rescale_forward(x.data(), y_emu.data(), rows, cols, target, mn, d, nullptr);
  const relat_status se2 = relat_cuda_row_rescale_backward(x.data(), dy.data(), dx_emu.data(), rows,
                                                           cols, target, mn, d, nullptr);
  const relat_status sc1 =
      relat_cpu_row_rescale_forward(x.data(), y_cpu.data(), rows, cols, target, mn, d, nullptr);
  const relat_status sc2 = relat_cpu_row_rescale_backward(x.data(), dy.data(), dx_cpu.data(), rows,
                                                          cols, target, mn, d, nullptr);
  if (!counter.check(se1 == RELAT_OK && se2 == RELAT_OK && sc1 == RELAT_OK && sc2 == RELAT_OK,
                     "row_rescale edges %s cols=%lld: status %d %d / %d %d (%s)", dtype_name(d),
                     (long long)cols, se1, se2, sc1, sc2, relat_cuda_last_error()))
    return;
  for (int64_t r = 0; r < rows; ++r) {
    const char *name = r < base ? edge_name(kEdges[r]) : r == base ? "norm=clamp" : r == base + 1
                                                                     ? "norm=clamp(1+2^-10)"
                                                                     : "norm=clamp(1-2^-10)";
    const Comparison cy = compare(row_of(y_emu, r, cols), row_of(y_cpu, r, cols), tolerance(d));
    double err = 0;
    const bool ok = close(row_of(dx_emu, r, cols), row_of(dx_cpu, r, cols), bound(d), &err);
    counter.check(cy.ok && ok, "row_rescale edges %s cols=%lld, %s row: y %s, dx error %.3g",
                  dtype_name(d), (long long)cols, name, cy.describe().c_str(), err);
  }
}

void check_errors(Counter &counter) {
  float buf[64] = {};
  unsigned char ws[1 << 12];
  int64_t f = 0, b = 0;
  struct Bad {
    const char *name;
    const void *h;
    int64_t batch, hidden, vocab;
    float inv_tau;
    int dtype;
  } cases[] = {
      {"h=NULL", nullptr, 2, 4, 4, 1.f, RELAT_F32},
      {"hidden=0", buf, 2, 0, 4, 1.f, RELAT_F32},
      {"vocab=0", buf, 2, 4, 0, 1.f, RELAT_F32},
      {"inv_tau=0", buf, 2, 4, 4, 0.f, RELAT_F32},
      {"inv_tau=inf", buf, 2, 4, 4, INFINITY, RELAT_F32},
      {"dtype=5", buf, 2, 4, 4, 1.f, 5},
  };
  for (const Bad &c : cases) {
    const relat_status se = relat_cuda_latent_soft_forward(c.h, buf, buf, buf, buf, buf, c.batch,
                                                           c.hidden, c.vocab, c.inv_tau, ws,
                                                           sizeof ws, relat_dtype(c.dtype), nullptr);
    const relat_status sc = relat_cpu_latent_soft_forward(c.h, buf, buf, buf, buf, buf, c.batch,
                                                          c.hidden, c.vocab, c.inv_tau, ws,
                                                          sizeof ws, relat_dtype(c.dtype), nullptr);
    counter.check(se == RELAT_ERR_INVALID_ARGUMENT && sc == RELAT_ERR_INVALID_ARGUMENT,
                  "latent_soft_forward rejects %s: emulated %d, cpu %d", c.name, se, sc);
  }
  relat_cuda_latent_soft_workspace_bytes(2, 16, 1000, RELAT_F32, &f, &b);
  const relat_status se = relat_cuda_latent_soft_backward(buf, buf, buf, buf, buf, buf, buf, 2, 16,
                                                          1000, 1.f, ws, 8, RELAT_F32, nullptr);
  const relat_status sc = relat_cpu_latent_soft_backward(buf, buf, buf, buf, buf, buf, buf, 2, 16,
                                                         1000, 1.f, ws, 8, RELAT_F32, nullptr);
  counter.check(b > 8 && se == RELAT_ERR_INVALID_ARGUMENT && sc == RELAT_ERR_INVALID_ARGUMENT,
                "latent_soft_backward rejects a small workspace: emulated %d, cpu %d", se, sc);
  const relat_status re = relat_cuda_row_rescale_forward(buf, buf, 2, 4, 1.f, 0.f, RELAT_F32, nullptr);
  const relat_status rc = relat_cpu_row_rescale_forward(buf, buf, 2, 4, 1.f, 0.f, RELAT_F32, nullptr);
  counter.check(re == RELAT_ERR_INVALID_ARGUMENT && rc == RELAT_ERR_INVALID_ARGUMENT,
                "row_rescale_forward rejects min_norm=0: emulated %d, cpu %d", re, rc);
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {
      {1, 8, 5},      // one row, vocabulary below a tile
      {1, 33, 130},   // hidden off the 16-byte vectors: scalar path
      {3, 64, 200},   // 16-byte vectors, vocabulary off the 64-row tile
      {9, 40, 150},   // batch past the group of 8: two groups
      {2, 1030, 70},  // wide rows
      {1, 6144, 70},  // backward's dh + ubar past the default 48 KiB of shared memory
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes) {
      check_soft(counter, rng, d, s, false, 1.f);
      check_soft(counter, rng, d, s, true, 0.7f);
    }
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) {
    check_rescale(counter, rng, d, 1, 7, 2.f, false);
    check_rescale(counter, rng, d, 5, 1000, 2.f, false);
    check_rescale(counter, rng, d, 3, 4099, 2.f, true);
  }
  check_rescale(counter, rng, RELAT_F32, 4, 64, 1e-9f, false);  // below the norm clamp
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (int64_t cols : {7, 1000, 4099}) check_rescale_edges(counter, rng, d, cols);
  check_errors(counter);
  return counter.finish();
}
