// RMSNorm, its backward and residual add + RMSNorm (kernels/rmsnorm.cu) against the CPU twins
// (native/src/rmsnorm.cpp), and their timings.
#include <cuda_runtime.h>

#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

void check_rmsnorm(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f),
               w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f);
  Tensor y(d, n), want(d, n), rstd(RELAT_F32, size_t(rows)), want_rstd(RELAT_F32, size_t(rows));
  poison(y);
  poison(rstd);
  DeviceBuffer dx(x), dw(w), dy(y), drstd(rstd);
  const relat_status s =
      relat_cuda_rmsnorm_forward(dx.get(), dw.get(), dy.get(), static_cast<float *>(drstd.get()),
                                 rows, cols, 1e-6f, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_rmsnorm_forward(x.data(), w.data(), want.data(), static_cast<float *>(want_rstd.data()),
                            rows, cols, 1e-6f, d, nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "rmsnorm %s rows=%lld cols=%lld", dtype_name(d), (long long)rows,
                (long long)cols);
  if (!device_ok(c, what, s, sync)) return;
  dy.download(y);
  drstd.download(rstd);
  const Comparison cy = compare(y, want, tolerance(d)),
                   cr = compare(rstd, want_rstd, tolerance(RELAT_F32));
  c.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  c.check(cr.ok, "%s: rstd %s", what, cr.describe().c_str());
}

void bench_rmsnorm(FILE *csv, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  DeviceBuffer dx(timing_tensor(rng, d, n, -3.f, 3.f)),
      dw(timing_tensor(rng, d, size_t(cols), 0.5f, 1.5f));
  DeviceBuffer dy(n * es), drstd(size_t(rows) * 4);
  // Bytes that must move: read x, write y, read the weight once, write rstd.
  const double bytes = double(n) * es * 2 + double(cols) * es + double(rows) * 4;
  bench_one(csv, "rmsnorm", d, rows, cols, bytes, [&] {
    return relat_cuda_rmsnorm_forward(dx.get(), dw.get(), dy.get(),
                                      static_cast<float *>(drstd.get()), rows, cols, 1e-6f, d,
                                      nullptr);
  });
}

void check_norm_backward(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols,
                         bool residual) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f),
               w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f),
               g = random_tensor(rng, d, n, -1.f, 1.f), gn = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor y(d, n), rstd(RELAT_F32, size_t(rows)), dx(d, n), want(d, n), dw(RELAT_F32, size_t(cols)),
      want_dw(RELAT_F32, size_t(cols));
  relat_cpu_rmsnorm_forward(x.data(), w.data(), y.data(), static_cast<float *>(rstd.data()), rows,
                            cols, 1e-6f, d, nullptr);
  int64_t ws_dev = 0, ws_host = 0;
  relat_cuda_rmsnorm_backward_workspace_bytes(rows, cols, &ws_dev);
  relat_cpu_rmsnorm_backward_workspace_bytes(rows, cols, &ws_host);
  Tensor work(RELAT_F32, size_t(ws_host / 4));
  poison(dx);
  poison(dw);
  DeviceBuffer bx(x), bw(w), bg(g), bgn(gn), br(rstd), bdx(dx), bdw(dw),
      bwork(static_cast<size_t>(ws_dev));
  const float *dr = static_cast<const float *>(br.get());
  float *ddw = static_cast<float *>(bdw.get());
  const relat_status s =
      residual
          ? relat_cuda_add_rmsnorm_backward(bg.get(), bgn.get(), bx.get(), bw.get(), dr, bdx.get(),
                                            ddw, bwork.get(), ws_dev, rows, cols, d, nullptr)
          : relat_cuda_rmsnorm_backward(bg.get(), bx.get(), bw.get(), dr, bdx.get(), ddw,
                                        bwork.get(), ws_dev, rows, cols, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  const float *hr = static_cast<const float *>(rstd.data());
  float *hdw = static_cast<float *>(want_dw.data());
  if (residual)
    relat_cpu_add_rmsnorm_backward(g.data(), gn.data(), x.data(), w.data(), hr, want.data(), hdw,
                                   work.data(), ws_host, rows, cols, d, nullptr);
  else
    relat_cpu_rmsnorm_backward(g.data(), x.data(), w.data(), hr, want.data(), hdw, work.data(),
                               ws_host, rows, cols, d, nullptr);
  char what[112];
  std::snprintf(what, sizeof what, "%s %s rows=%lld cols=%lld",
                residual ? "add_rmsnorm_backward" : "rmsnorm_backward", dtype_name(d),
                (long long)rows, (long long)cols);
  if (!device_ok(c, what, s, sync)) return;
  bdx.download(dx);
  bdw.download(dw);
  const Comparison cx = compare(dx, want, tolerance(d)),
                   cw = compare(dw, want_dw, Tolerance{1e-5, 2e-6 * double(rows)});
  c.check(cx.ok, "%s: dx %s", what, cx.describe().c_str());
  c.check(cw.ok, "%s: dweight %s", what, cw.describe().c_str());
}

void check_add_rmsnorm(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f), r = random_tensor(rng, d, n, -3.f, 3.f),
               w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f);
  Tensor s(d, n), y(d, n), rstd(RELAT_F32, size_t(rows)), ws(d, n), wy(d, n),
      wr(RELAT_F32, size_t(rows));
  poison(s);
  poison(y);
  poison(rstd);
  DeviceBuffer bx(x), br(r), bw(w), bs(s), by(y), brs(rstd);
  const relat_status st = relat_cuda_add_rmsnorm_forward(bx.get(), br.get(), bs.get(), bw.get(),
                                                         by.get(), static_cast<float *>(brs.get()),
                                                         rows, cols, 1e-6f, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_add_rmsnorm_forward(x.data(), r.data(), ws.data(), w.data(), wy.data(),
                                static_cast<float *>(wr.data()), rows, cols, 1e-6f, d, nullptr);
  char what[112];
  std::snprintf(what, sizeof what, "add_rmsnorm_forward %s rows=%lld cols=%lld", dtype_name(d),
                (long long)rows, (long long)cols);
  if (!device_ok(c, what, st, sync)) return;
  bs.download(s);
  by.download(y);
  brs.download(rstd);
  const Comparison cs = compare(s, ws, tolerance(d)), cy = compare(y, wy, tolerance(d)),
                   cr = compare(rstd, wr, tolerance(RELAT_F32));
  c.check(cs.ok && cy.ok && cr.ok, "%s: s %s, y %s, rstd %s", what, cs.describe().c_str(),
          cy.describe().c_str(), cr.describe().c_str());
}

void bench_norms(FILE *csv, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  DeviceBuffer x(timing_tensor(rng, d, n, -3.f, 3.f)),
      w(timing_tensor(rng, d, size_t(cols), 0.5f, 1.5f)), g(timing_tensor(rng, d, n, -1.f, 1.f)),
      gn(timing_tensor(rng, d, n, -1.f, 1.f));
  DeviceBuffer y(n * es), s(n * es), rstd(size_t(rows) * 4), dw(size_t(cols) * 4);
  int64_t ws = 0;
  relat_cuda_rmsnorm_backward_workspace_bytes(rows, cols, &ws);
  DeviceBuffer work(static_cast<size_t>(ws));
  float *r = static_cast<float *>(rstd.get());
  relat_cuda_rmsnorm_forward(x.get(), w.get(), y.get(), r, rows, cols, 1e-6f, d, nullptr);
  const double tensor = double(n) * es, weight = double(cols) * es, stat = double(rows) * 4;
  // Floors: read dy, x, write dx (+ read ds_next); forward with residual: read x, r, write s, y.
  bench_one(csv, "rmsnorm_backward", d, rows, cols, 3 * tensor + weight + stat, [&] {
    return relat_cuda_rmsnorm_backward(g.get(), x.get(), w.get(), r, y.get(), nullptr, nullptr, 0,
                                       rows, cols, d, nullptr);
  });
  bench_one(csv, "rmsnorm_backward_dweight", d, rows, cols, 3 * tensor + weight + stat + cols * 4.0,
            [&] {
              return relat_cuda_rmsnorm_backward(g.get(), x.get(), w.get(), r, y.get(),
                                                 static_cast<float *>(dw.get()), work.get(), ws,
                                                 rows, cols, d, nullptr);
            });
  bench_one(csv, "add_rmsnorm_forward", d, rows, cols, 4 * tensor + weight + stat, [&] {
    return relat_cuda_add_rmsnorm_forward(x.get(), g.get(), s.get(), w.get(), y.get(), r, rows,
                                          cols, 1e-6f, d, nullptr);
  });
  bench_one(csv, "add_rmsnorm_backward", d, rows, cols, 4 * tensor + weight + stat, [&] {
    return relat_cuda_add_rmsnorm_backward(g.get(), gn.get(), x.get(), w.get(), r, s.get(), nullptr,
                                           nullptr, 0, rows, cols, d, nullptr);
  });
}

void check(Counter &c, Rng &rng, bool quick) {
  std::vector<Shape> shapes = {{1, 1},   {1, 7},    {3, 31},   {4, 33},   {5, 100},
                               {2, 129}, {7, 1000}, {2, 4097}, {16, 2560}};
  if (!quick) shapes.insert(shapes.end(), {{4096, 4096}, {1024, 5120}, {3, 100000}, {65536, 64}});
  for (relat_dtype d : kDtypes)
    for (const Shape &s : shapes) check_rmsnorm(c, rng, d, s.rows, s.cols);
  // Backward and residual forms: awkward shapes, QK-norm rows (T*H x 128), and a row whose fp32
  // dweight partials exceed shared memory (12288).
  std::vector<Shape> norm = {{1, 1},    {1, 7},    {4, 33},    {5, 100},  {2, 129},
                             {7, 1000}, {2, 4097}, {300, 128}, {2, 12288}};
  if (!quick) norm.insert(norm.end(), {{1024, 4096}, {16384, 128}, {512, 12288}});
  for (relat_dtype d : kDtypes)
    for (const Shape &s : norm) {
      check_norm_backward(c, rng, d, s.rows, s.cols, false);
      check_norm_backward(c, rng, d, s.rows, s.cols, true);
      check_add_rmsnorm(c, rng, d, s.rows, s.cols);
    }
}

void bench(FILE *csv, Rng &rng) {
  // Prefill-sized batches of Qwen3 hidden states: 128-640 MiB moved per call.
  const Shape shapes[] = {{65536, 1024}, {32768, 2560}, {16384, 5120}};
  for (relat_dtype d : kDtypes)
    for (const Shape &s : shapes) bench_rmsnorm(csv, rng, d, s.rows, s.cols);
  // Backward and residual forms on the same shapes; QK-norm (rmsnorm at cols = 128).
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) {
    for (const Shape &s : shapes) bench_norms(csv, rng, d, s.rows, s.cols);
    bench_rmsnorm(csv, rng, d, 65536 * 32, 128);
  }
}

}  // namespace

RELAT_GPU_OP("rmsnorm", check, bench);
