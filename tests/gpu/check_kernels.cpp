// GPU check driver (tests/gpu/run.sh): every CUDA kernel of librelat_cuda, run on the device,
// against its CPU twin in librelat_cpu on the host, on fresh random data with NaN-poisoned outputs;
// and CUDA-event timings of each kernel on shapes that fill the GPU.
//   check_kernels check [--quick]   correctness (--quick: small shapes, for compute-sanitizer)
//   check_kernels bench <out.csv>   median time per kernel, dtype and shape
// Adding a kernel: a check_<op> and a bench_<op> below, called from main, and the same op in
// bench_torch.py.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cmath>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

using namespace relat::test;

namespace {

void cuda_ok(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "CUDA error in %s: %s (%s)\n", what, cudaGetErrorName(e),
               cudaGetErrorString(e));
  std::exit(2);
}

// Device memory holding a copy of a host tensor (or `bytes` of poison).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    cuda_ok(cudaMalloc(&p_, std::max<size_t>(bytes, 1)), "cudaMalloc");
  }
  explicit DeviceBuffer(const Tensor &t) : DeviceBuffer(t.size_bytes()) { upload(t); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  void upload(const Tensor &t) {
    cuda_ok(cudaMemcpy(p_, t.data(), t.size_bytes(), cudaMemcpyHostToDevice), "upload");
  }
  void download(Tensor &t) const {
    cuda_ok(cudaMemcpy(t.data(), p_, t.size_bytes(), cudaMemcpyDeviceToHost), "download");
  }
  void upload_raw(const void *src, size_t bytes) {
    cuda_ok(cudaMemcpy(p_, src, bytes, cudaMemcpyHostToDevice), "upload");
  }
  void download_raw(void *dst, size_t bytes) const {
    cuda_ok(cudaMemcpy(dst, p_, bytes, cudaMemcpyDeviceToHost), "download");
  }
  void *get() const { return p_; }

 private:
  void *p_ = nullptr;
  size_t bytes_;
};

// ---- RMSNorm ------------------------------------------------------------------------------------
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
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dy.download(y);
  drstd.download(rstd);
  const Comparison cy = compare(y, want, tolerance(d)),
                   cr = compare(rstd, want_rstd, tolerance(RELAT_F32));
  c.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  c.check(cr.ok, "%s: rstd %s", what, cr.describe().c_str());
}

// ---- Attention (training: forward + backward; decode) --------------------------------------------
// Errors are measured against each tensor's largest magnitude: device and host sum in different
// orders, so elements near zero differ by ~1 ulp of the max.
Tolerance scaled_tolerance(relat_dtype d, const Tensor &want) {
  float mx = 0.f;
  for (size_t i = 0; i < want.n; ++i) mx = std::max(mx, std::fabs(want.at(i)));
  const Tolerance t = tolerance(d);
  return {t.rtol, t.rtol * mx + t.atol};
}

struct AttnShape {
  int64_t tq, prefix, hq, hkv, d;
};

void check_attention(Counter &c, Rng &rng, relat_dtype d, AttnShape s) {
  const int64_t tk = s.tq + s.prefix, stride = s.hkv * s.d;
  const size_t nq = size_t(s.tq * s.hq * s.d), nkv = size_t(tk * s.hkv * s.d),
               nl = size_t(s.tq * s.hq);
  const float scale = 1.f / std::sqrt(float(s.d));
  const Tensor q = random_tensor(rng, d, nq, -2.f, 2.f), k = random_tensor(rng, d, nkv, -2.f, 2.f),
               v = random_tensor(rng, d, nkv, -2.f, 2.f), dout = random_tensor(rng, d, nq, -1.f, 1.f);
  char what[128];
  std::snprintf(what, sizeof what, "attention %s tq=%lld P=%lld hq=%lld hkv=%lld D=%lld",
                dtype_name(d), (long long)s.tq, (long long)s.prefix, (long long)s.hq,
                (long long)s.hkv, (long long)s.d);
  Tensor out(d, nq), lse(RELAT_F32, nl), want_out(d, nq), want_lse(RELAT_F32, nl);
  poison(out);
  poison(lse);
  DeviceBuffer dq_(q), dk_(k), dv_(v), ddout(dout), dout_(out), dlse(lse);
  relat_status st = relat_cuda_attention_forward(dq_.get(), dk_.get(), dv_.get(), dout_.get(),
                                                 static_cast<float *>(dlse.get()), s.tq, tk, s.hq,
                                                 s.hkv, s.d, stride, scale, d, nullptr);
  cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_attention_forward(q.data(), k.data(), v.data(), want_out.data(),
                              static_cast<float *>(want_lse.data()), s.tq, tk, s.hq, s.hkv, s.d,
                              stride, scale, d, nullptr);
  if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s forward: status %d (%s), sync %s", what,
               st, relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dout_.download(out);
  dlse.download(lse);
  const Comparison co = compare(out, want_out, scaled_tolerance(d, want_out)),
                   cl = compare(lse, want_lse, scaled_tolerance(RELAT_F32, want_lse));
  c.check(co.ok, "%s: out %s", what, co.describe().c_str());
  c.check(cl.ok, "%s: lse %s", what, cl.describe().c_str());

  // Backward from the host forward's out and lse, so both sides see the same inputs.
  int64_t ws_dev = 0, ws_host = 0;
  relat_cuda_attention_backward_workspace_bytes(s.tq, tk, s.hq, s.hkv, s.d, d, &ws_dev);
  relat_cpu_attention_backward_workspace_bytes(s.tq, tk, s.hq, s.hkv, s.d, d, &ws_host);
  Tensor grads[3] = {Tensor(d, nq), Tensor(d, nkv), Tensor(d, nkv)};
  Tensor want[3] = {Tensor(d, nq), Tensor(d, nkv), Tensor(d, nkv)};
  for (Tensor &g : grads) poison(g);
  Tensor ws(RELAT_F32, size_t(std::max<int64_t>(1, ws_host / 4)));
  DeviceBuffer dgq(grads[0]), dgk(grads[1]), dgv(grads[2]), dws(size_t(std::max<int64_t>(4, ws_dev)));
  dout_.upload(want_out);
  dlse.upload(want_lse);
  st = relat_cuda_attention_backward(ddout.get(), dq_.get(), dk_.get(), dv_.get(), dout_.get(),
                                     static_cast<const float *>(dlse.get()), dgq.get(), dgk.get(),
                                     dgv.get(), static_cast<float *>(dws.get()), ws_dev, s.tq, tk,
                                     s.hq, s.hkv, s.d, stride, scale, 0, d, nullptr);
  sync = cudaDeviceSynchronize();
  relat_cpu_attention_backward(dout.data(), q.data(), k.data(), v.data(), want_out.data(),
                               static_cast<const float *>(want_lse.data()), want[0].data(),
                               want[1].data(), want[2].data(), static_cast<float *>(ws.data()),
                               ws_host, s.tq, tk, s.hq, s.hkv, s.d, stride, scale, 0, d, nullptr);
  if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s backward: status %d (%s), sync %s", what,
               st, relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dgq.download(grads[0]);
  dgk.download(grads[1]);
  dgv.download(grads[2]);
  const char *names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    const Comparison cg = compare(grads[i], want[i], scaled_tolerance(d, want[i]));
    c.check(cg.ok, "%s: %s %s", what, names[i], cg.describe().c_str());
  }
}

void check_decode(Counter &c, Rng &rng, relat_dtype d, int64_t len, int64_t hq, int64_t hkv,
                  int64_t dim) {
  const int64_t capacity = len + 17, stride = hkv * dim;
  const size_t ncache = size_t(capacity * stride), nq = size_t(hq * dim);
  const Tensor kc = random_tensor(rng, d, ncache, -2.f, 2.f), vc = random_tensor(rng, d, ncache, -2.f, 2.f),
               q = random_tensor(rng, d, nq, -2.f, 2.f);
  int64_t ws_bytes = 0;
  relat_cuda_decode_attention_workspace_bytes(1, hq, dim, len, &ws_bytes);
  Tensor out(d, nq), want(d, nq), ws(RELAT_F32, size_t(std::max<int64_t>(1, ws_bytes / 4)));
  poison(out);
  poison(ws);
  DeviceBuffer dkc(kc), dvc(vc), dq(q), dout(out), dws(ws);
  const float scale = 1.f / std::sqrt(float(dim));
  const relat_status st = relat_cuda_decode_attention_forward(
      dq.get(), dkc.get(), dvc.get(), dout.get(), nullptr, 1, len, hq, hkv, dim, stride, 0, scale,
      static_cast<float *>(dws.get()), ws_bytes, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_decode_attention_forward(q.data(), kc.data(), vc.data(), want.data(), nullptr, 1, len,
                                     hq, hkv, dim, stride, 0, scale, static_cast<float *>(ws.data()),
                                     ws_bytes, d, nullptr);
  char what[128];
  std::snprintf(what, sizeof what, "decode %s len=%lld hq=%lld hkv=%lld D=%lld", dtype_name(d),
                (long long)len, (long long)hq, (long long)hkv, (long long)dim);
  if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, st,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dout.download(out);
  const Comparison co = compare(out, want, scaled_tolerance(d, want));
  c.check(co.ok, "%s: out %s", what, co.describe().c_str());
}

// ---- fused linear cross-entropy -----------------------------------------------------------------
// dH is compared as max |got - want| / max |want| (the kernel feeds its second GEMM with
// probabilities rounded to the storage type, the CPU twin keeps them in fp32).
double relative_bound(relat_dtype d) { return d == RELAT_F32 ? 1e-5 : d == RELAT_BF16 ? 1e-2 : 1e-3; }

bool close_relative(const Tensor &got, const Tensor &want, double bound, double *err) {
  double e = 0, scale = 0;
  bool nan = false;
  for (size_t i = 0; i < want.n; ++i) {
    const double g = got.at(i), w = want.at(i);
    nan = nan || std::isnan(g) || std::isnan(w);
    e = std::max(e, std::fabs(g - w));
    scale = std::max(scale, std::fabs(w));
  }
  *err = scale > 0 ? e / scale : e;
  return !nan && e <= bound * scale;
}

void check_linear_cross_entropy(Counter &c, Rng &rng, relat_dtype d, int64_t tokens, int64_t hidden,
                                int64_t vocab, double ignored) {
  const size_t nh = size_t(tokens * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden));
  const Tensor h = random_tensor(rng, d, nh, -1.5f, 1.5f), u = random_tensor(rng, d, nu, -scale, scale);
  std::vector<int64_t> targets(static_cast<size_t>(tokens));
  for (auto &t : targets) t = rng.uniform(0.f, 1.f) < ignored ? -100 : rng.integer(0, vocab - 1);
  targets[0] = rng.integer(0, vocab - 1);  // at least one counted position
  int64_t ws_gpu = 0, ws_cpu = 0;
  relat_cuda_linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, d, &ws_gpu);
  relat_cpu_linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, d, &ws_cpu);
  Tensor dh(d, nh), want(d, nh), loss(RELAT_F32, 1), want_loss(RELAT_F32, 1);
  poison(dh);
  poison(loss);
  DeviceBuffer dhh(h), du(u), ddh(dh), dloss(loss), dws(static_cast<size_t>(ws_gpu)),
      dt(targets.size() * sizeof(int64_t));
  cuda_ok(cudaMemcpy(dt.get(), targets.data(), targets.size() * sizeof(int64_t),
                     cudaMemcpyHostToDevice), "upload targets");
  const relat_status s = relat_cuda_linear_cross_entropy(
      dhh.get(), du.get(), static_cast<const int64_t *>(dt.get()), -100,
      static_cast<float *>(dloss.get()), ddh.get(), tokens, hidden, vocab, dws.get(), ws_gpu, d,
      nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  std::vector<unsigned char> wcpu(static_cast<size_t>(ws_cpu));
  relat_cpu_linear_cross_entropy(h.data(), u.data(), targets.data(), -100,
                                 static_cast<float *>(want_loss.data()), want.data(), tokens, hidden,
                                 vocab, wcpu.data(), ws_cpu, d, nullptr);
  char what[120];
  std::snprintf(what, sizeof what, "linear_cross_entropy %s T=%lld d=%lld V=%lld", dtype_name(d),
                (long long)tokens, (long long)hidden, (long long)vocab);
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  ddh.download(dh);
  dloss.download(loss);
  const double lg = loss.at(0), lw = want_loss.at(0);
  c.check(std::fabs(lg - lw) <= 1e-5 * std::fabs(lw) + 1e-6, "%s: loss %.9g want %.9g", what, lg, lw);
  double err = 0;
  bool ok;
  ok = close_relative(dh, want, relative_bound(d), &err);
  c.check(ok, "%s: dh error %.3g of max", what, err);
}

// ---- latent step: soft forward + backward, row rescale ------------------------------------------
void check_latent_soft(Counter &c, Rng &rng, relat_dtype d, int64_t batch, int64_t hidden,
                       int64_t vocab, bool tied) {
  const size_t nh = size_t(batch * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden)), inv_tau = 1.f / 0.7f;
  const Tensor h = random_tensor(rng, d, nh, -1.5f, 1.5f), u = random_tensor(rng, d, nu, -scale, scale),
               e_own = random_tensor(rng, d, tied ? 1 : nu, -scale, scale),
               de = random_tensor(rng, d, nh, -1.f, 1.f);
  const Tensor &emb = tied ? u : e_own;
  int64_t fg = 0, bg = 0, fc = 0, bc = 0;
  relat_cuda_latent_soft_workspace_bytes(batch, hidden, vocab, d, &fg, &bg);
  relat_cpu_latent_soft_workspace_bytes(batch, hidden, vocab, d, &fc, &bc);
  Tensor e(d, nh), lse(RELAT_F32, size_t(batch)), e32(RELAT_F32, nh), dh(d, nh);
  Tensor we(d, nh), wlse(RELAT_F32, size_t(batch)), we32(RELAT_F32, nh), wdh(d, nh);
  for (Tensor *t : {&e, &lse, &e32, &dh}) poison(*t);
  DeviceBuffer dhh(h), du(u), demb(emb), dde(de), dout(e), dlse(lse), de32(e32), ddh(dh),
      dwf(static_cast<size_t>(fg)), dwb(static_cast<size_t>(bg));
  relat_status s = relat_cuda_latent_soft_forward(
      dhh.get(), du.get(), demb.get(), dout.get(), static_cast<float *>(dlse.get()),
      static_cast<float *>(de32.get()), batch, hidden, vocab, inv_tau, dwf.get(), fg, d, nullptr);
  if (s == RELAT_OK)
    s = relat_cuda_latent_soft_backward(dhh.get(), du.get(), demb.get(),
                                        static_cast<const float *>(dlse.get()),
                                        static_cast<const float *>(de32.get()), dde.get(), ddh.get(),
                                        batch, hidden, vocab, inv_tau, dwb.get(), bg, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  std::vector<unsigned char> wf(static_cast<size_t>(fc)), wb(static_cast<size_t>(bc));
  relat_cpu_latent_soft_forward(h.data(), u.data(), emb.data(), we.data(),
                                static_cast<float *>(wlse.data()), static_cast<float *>(we32.data()),
                                batch, hidden, vocab, inv_tau, wf.data(), fc, d, nullptr);
  relat_cpu_latent_soft_backward(h.data(), u.data(), emb.data(), static_cast<const float *>(wlse.data()),
                                 static_cast<const float *>(we32.data()), de.data(), wdh.data(), batch,
                                 hidden, vocab, inv_tau, wb.data(), bc, d, nullptr);
  char what[120];
  std::snprintf(what, sizeof what, "latent_soft %s B=%lld d=%lld V=%lld%s", dtype_name(d),
                (long long)batch, (long long)hidden, (long long)vocab, tied ? " tied" : "");
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dout.download(e);
  dlse.download(lse);
  de32.download(e32);
  ddh.download(dh);
  double err = 0;
  bool ok;
  ok = close_relative(e, we, relative_bound(d), &err);
  c.check(ok, "%s: e error %.3g", what, err);
  ok = close_relative(e32, we32, 1e-5, &err);
  c.check(ok, "%s: e32 error %.3g", what, err);
  ok = close_relative(lse, wlse, 1e-5, &err);
  c.check(ok, "%s: lse error %.3g", what, err);
  ok = close_relative(dh, wdh, relative_bound(d), &err);
  c.check(ok, "%s: dh error %.3g", what, err);
}

void check_row_rescale(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, d, n, -2.f, 2.f), dy = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor y(d, n), dx(d, n), wy(d, n), wdx(d, n);
  poison(y);
  poison(dx);
  DeviceBuffer dxx(x), ddy(dy), dyy(y), ddx(dx);
  relat_status s = relat_cuda_row_rescale_forward(dxx.get(), dyy.get(), rows, cols, 1.7f, 1e-6f, d, nullptr);
  if (s == RELAT_OK)
    s = relat_cuda_row_rescale_backward(dxx.get(), ddy.get(), ddx.get(), rows, cols, 1.7f, 1e-6f, d,
                                        nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_row_rescale_forward(x.data(), wy.data(), rows, cols, 1.7f, 1e-6f, d, nullptr);
  relat_cpu_row_rescale_backward(x.data(), dy.data(), wdx.data(), rows, cols, 1.7f, 1e-6f, d, nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "row_rescale %s rows=%lld cols=%lld", dtype_name(d),
                (long long)rows, (long long)cols);
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dyy.download(y);
  ddx.download(dx);
  const Comparison cy = compare(y, wy, tolerance(d));
  c.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  double err = 0;
  bool ok;
  ok = close_relative(dx, wdx, relative_bound(d), &err);
  c.check(ok, "%s: dx error %.3g", what, err);
}

// Median of `iters` individually timed launches after a warm-up, in microseconds.
template <class Launch> double median_us(Launch launch, int warmup = 10, int iters = 100) {
  for (int i = 0; i < warmup; ++i) launch();
  std::vector<cudaEvent_t> ev(size_t(2 * iters));
  for (cudaEvent_t &e : ev) cuda_ok(cudaEventCreate(&e), "cudaEventCreate");
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(ev[size_t(2 * i)]);
    launch();
    cudaEventRecord(ev[size_t(2 * i + 1)]);
  }
  cuda_ok(cudaDeviceSynchronize(), "timed launches");
  std::vector<double> us(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    float ms = 0;
    cudaEventElapsedTime(&ms, ev[size_t(2 * i)], ev[size_t(2 * i + 1)]);
    us[size_t(i)] = ms * 1000.0;
  }
  for (cudaEvent_t &e : ev) cudaEventDestroy(e);
  std::nth_element(us.begin(), us.begin() + iters / 2, us.end());
  return us[size_t(iters / 2)];
}

// Inputs for timing: a random block repeated (the values do not change the work).
Tensor timing_tensor(Rng &rng, relat_dtype d, size_t n, float lo, float hi) {
  const size_t block = std::min<size_t>(n, 1 << 16);
  const Tensor pattern = random_tensor(rng, d, block, lo, hi);
  Tensor t(d, n);
  const size_t es = dtype_size(d);
  for (size_t i = 0; i < n; i += block)
    std::memcpy(static_cast<char *>(t.data()) + i * es, pattern.data(),
                std::min(block, n - i) * es);
  return t;
}

void bench_rmsnorm(FILE *csv, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  DeviceBuffer dx(timing_tensor(rng, d, n, -3.f, 3.f)),
      dw(timing_tensor(rng, d, size_t(cols), 0.5f, 1.5f));
  DeviceBuffer dy(n * es), drstd(size_t(rows) * 4);
  relat_status status = RELAT_OK;
  const double us = median_us([&] {
    const relat_status s =
        relat_cuda_rmsnorm_forward(dx.get(), dw.get(), dy.get(), static_cast<float *>(drstd.get()),
                                   rows, cols, 1e-6f, d, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "rmsnorm bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  // Bytes that must move: read x, write y, read the weight once, write rstd.
  const double bytes = double(n) * es * 2 + double(cols) * es + double(rows) * 4;
  std::fprintf(csv, "rmsnorm,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)rows,
               (long long)cols, us, bytes);
  std::printf("rmsnorm %s %lldx%lld: %.1f us\n", dtype_name(d), (long long)rows, (long long)cols,
              us);
}

// Qwen3-0.6B heads (16 query, 8 KV, D = 128); rows = tq, cols = tk in the CSV. The floor columns
// count bytes; FLOPs (4*V*D forward, 10*V*D backward with V visible pairs) are in attention.cu.
void bench_attention(FILE *csv, Rng &rng, relat_dtype d, int64_t tq, int64_t tk) {
  const int64_t hq = 16, hkv = 8, dim = 128, stride = hkv * dim;
  const size_t nq = size_t(tq * hq * dim), nkv = size_t(tk * hkv * dim), es = dtype_size(d);
  const float scale = 1.f / std::sqrt(float(dim));
  DeviceBuffer q(timing_tensor(rng, d, nq, -2.f, 2.f)), k(timing_tensor(rng, d, nkv, -2.f, 2.f)),
      v(timing_tensor(rng, d, nkv, -2.f, 2.f)), dout(timing_tensor(rng, d, nq, -1.f, 1.f));
  DeviceBuffer out(nq * es), lse(size_t(tq * hq) * 4), gq(nq * es), gk(nkv * es), gv(nkv * es);
  int64_t ws_bytes = 0;
  relat_cuda_attention_backward_workspace_bytes(tq, tk, hq, hkv, dim, d, &ws_bytes);
  DeviceBuffer ws{size_t(ws_bytes)};
  relat_status status = RELAT_OK;
  auto fwd = [&] {
    const relat_status s = relat_cuda_attention_forward(q.get(), k.get(), v.get(), out.get(),
                                                        static_cast<float *>(lse.get()), tq, tk, hq,
                                                        hkv, dim, stride, scale, d, nullptr);
    if (s != RELAT_OK) status = s;
  };
  const double us_fwd = median_us(fwd);
  const double us_bwd = median_us([&] {
    const relat_status s = relat_cuda_attention_backward(
        dout.get(), q.get(), k.get(), v.get(), out.get(), static_cast<const float *>(lse.get()),
        gq.get(), gk.get(), gv.get(), static_cast<float *>(ws.get()), ws_bytes, tq, tk, hq, hkv,
        dim, stride, scale, 0, d, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "attention bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  const double F = double(nq), K = double(nkv), rows = double(tq * hq);
  const double prefix = double(tk - tq), pairs = double(hq) * (tq * prefix + tq * (tq + 1) / 2.0);
  const double bytes_fwd = (2 * F + 2 * K) * es + 4 * rows, bytes_bwd = (4 * F + 4 * K) * es + 8 * rows;
  std::fprintf(csv, "attention_fwd,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)tq,
               (long long)tk, us_fwd, bytes_fwd);
  std::fprintf(csv, "attention_bwd,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)tq,
               (long long)tk, us_bwd, bytes_bwd);
  std::printf("attention %s tq=%lld tk=%lld: forward %.1f us (%.1f TFLOP/s), backward %.1f us "
              "(%.1f TFLOP/s)\n", dtype_name(d), (long long)tq, (long long)tk, us_fwd,
              4 * pairs * dim / us_fwd * 1e-6, us_bwd, 10 * pairs * dim / us_bwd * 1e-6);
}

void bench_decode(FILE *csv, Rng &rng, relat_dtype d, int64_t len) {
  const int64_t hq = 16, hkv = 8, dim = 128, stride = hkv * dim;
  const size_t ncache = size_t(len * stride), nq = size_t(hq * dim), es = dtype_size(d);
  DeviceBuffer kc(timing_tensor(rng, d, ncache, -2.f, 2.f)), vc(timing_tensor(rng, d, ncache, -2.f, 2.f)),
      q(timing_tensor(rng, d, nq, -2.f, 2.f)), out(nq * es);
  int64_t ws_bytes = 0;
  relat_cuda_decode_attention_workspace_bytes(1, hq, dim, len, &ws_bytes);
  DeviceBuffer ws{size_t(ws_bytes)};
  relat_status status = RELAT_OK;
  const double us = median_us([&] {
    const relat_status s = relat_cuda_decode_attention_forward(
        q.get(), kc.get(), vc.get(), out.get(), nullptr, 1, len, hq, hkv, dim, stride, 0,
        1.f / std::sqrt(float(dim)), static_cast<float *>(ws.get()), ws_bytes, d, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "decode bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  const double bytes = 2.0 * double(ncache) * es + 2.0 * double(nq) * es;
  std::fprintf(csv, "decode_attention,%s,1,%lld,%.3f,%.0f\n", dtype_name(d), (long long)len, us, bytes);
  std::printf("decode %s len=%lld: %.1f us\n", dtype_name(d), (long long)len, us);
}

// Fused cross-entropy, forward + dL/dH. Writes rows = tokens, cols = hidden (vocab 151,936, the
// Qwen vocabulary). Compute-bound: bytes is the traffic floor (U once per 128-token block, H, dH),
// and the line printed also gives TFLOP/s against the 4 T V d FLOPs of the two GEMMs.
constexpr int64_t kQwenVocab = 151936;

void bench_linear_cross_entropy(FILE *csv, Rng &rng, relat_dtype d, int64_t tokens, int64_t hidden) {
  const int64_t vocab = kQwenVocab;
  const size_t es = dtype_size(d);
  const float scale = 2.f / std::sqrt(float(hidden));
  DeviceBuffer dh_in(timing_tensor(rng, d, size_t(tokens * hidden), -1.5f, 1.5f)),
      du(timing_tensor(rng, d, size_t(vocab * hidden), -scale, scale));
  std::vector<int64_t> targets(static_cast<size_t>(tokens));
  for (auto &t : targets) t = rng.integer(0, vocab - 1);
  int64_t ws = 0;
  relat_cuda_linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, d, &ws);
  DeviceBuffer dt(targets.size() * 8), dloss(4), ddh(size_t(tokens * hidden) * es), dws(static_cast<size_t>(ws));
  cuda_ok(cudaMemcpy(dt.get(), targets.data(), targets.size() * 8, cudaMemcpyHostToDevice), "targets");
  relat_status status = RELAT_OK;
  const double us = median_us(
      [&] {
        const relat_status s = relat_cuda_linear_cross_entropy(
            dh_in.get(), du.get(), static_cast<const int64_t *>(dt.get()), -100,
            static_cast<float *>(dloss.get()), ddh.get(), tokens, hidden, vocab, dws.get(), ws, d,
            nullptr);
        if (s != RELAT_OK) status = s;
      },
      3, 15);
  if (status != RELAT_OK) {
    std::fprintf(stderr, "linear_cross_entropy bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  const double bytes = double((tokens + 127) / 128) * vocab * hidden * es + 2.0 * tokens * hidden * es;
  const double flops = 4.0 * tokens * vocab * hidden;
  std::fprintf(csv, "linear_cross_entropy,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)tokens,
               (long long)hidden, us, bytes);
  std::printf("linear_cross_entropy %s T=%lld d=%lld V=%lld: %.1f us, %.1f TFLOP/s, workspace %.1f MB\n",
              dtype_name(d), (long long)tokens, (long long)hidden, (long long)vocab, us,
              flops / us / 1e6, ws / 1e6);
}

// Soft latent step, forward + backward, batch rows = rows, hidden = cols, vocab 151,936, untied.
void bench_latent_soft(FILE *csv, Rng &rng, relat_dtype d, int64_t batch, int64_t hidden) {
  const int64_t vocab = kQwenVocab;
  const size_t es = dtype_size(d), nh = size_t(batch * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden));
  DeviceBuffer dh_in(timing_tensor(rng, d, nh, -1.5f, 1.5f)), du(timing_tensor(rng, d, nu, -scale, scale)),
      demb(timing_tensor(rng, d, nu, -scale, scale)), dde(timing_tensor(rng, d, nh, -1.f, 1.f));
  int64_t fw = 0, bw = 0;
  relat_cuda_latent_soft_workspace_bytes(batch, hidden, vocab, d, &fw, &bw);
  DeviceBuffer de(nh * es), dlse(size_t(batch) * 4), de32(nh * 4), ddh(nh * es), dwf(static_cast<size_t>(fw)),
      dwb(static_cast<size_t>(bw));
  relat_status status = RELAT_OK;
  const double us = median_us([&] {
    relat_status s = relat_cuda_latent_soft_forward(
        dh_in.get(), du.get(), demb.get(), de.get(), static_cast<float *>(dlse.get()),
        static_cast<float *>(de32.get()), batch, hidden, vocab, 1.f, dwf.get(), fw, d, nullptr);
    if (s == RELAT_OK)
      s = relat_cuda_latent_soft_backward(dh_in.get(), du.get(), demb.get(),
                                          static_cast<const float *>(dlse.get()),
                                          static_cast<const float *>(de32.get()), dde.get(), ddh.get(),
                                          batch, hidden, vocab, 1.f, dwb.get(), bw, d, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "latent_soft bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  const double bytes = 4.0 * double(nu) * es;  // U and E, read once per direction
  std::fprintf(csv, "latent_soft,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)batch,
               (long long)hidden, us, bytes);
  std::printf("latent_soft %s B=%lld d=%lld V=%lld: %.1f us (forward + backward)\n", dtype_name(d),
              (long long)batch, (long long)hidden, (long long)vocab, us);
}

// ---- RMSNorm backward and residual add + RMSNorm (kernels/rmsnorm.cu) --------------------------
void check_norm_backward(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols,
                         bool residual) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, d, n, -3.f, 3.f), w = random_tensor(rng, d, size_t(cols), 0.5f, 1.5f),
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
  DeviceBuffer bx(x), bw(w), bg(g), bgn(gn), br(rstd), bdx(dx), bdw(dw), bwork(static_cast<size_t>(ws_dev));
  const float *dr = static_cast<const float *>(br.get());
  float *ddw = static_cast<float *>(bdw.get());
  const relat_status s =
      residual ? relat_cuda_add_rmsnorm_backward(bg.get(), bgn.get(), bx.get(), bw.get(), dr, bdx.get(),
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
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
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
  const relat_status st = relat_cuda_add_rmsnorm_forward(bx.get(), br.get(), bs.get(), bw.get(), by.get(),
                                                         static_cast<float *>(brs.get()), rows, cols,
                                                         1e-6f, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_add_rmsnorm_forward(x.data(), r.data(), ws.data(), w.data(), wy.data(),
                                static_cast<float *>(wr.data()), rows, cols, 1e-6f, d, nullptr);
  char what[112];
  std::snprintf(what, sizeof what, "add_rmsnorm_forward %s rows=%lld cols=%lld", dtype_name(d),
                (long long)rows, (long long)cols);
  if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, st,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  bs.download(s);
  by.download(y);
  brs.download(rstd);
  const Comparison cs = compare(s, ws, tolerance(d)), cy = compare(y, wy, tolerance(d)),
                   cr = compare(rstd, wr, tolerance(RELAT_F32));
  c.check(cs.ok && cy.ok && cr.ok, "%s: s %s, y %s, rstd %s", what, cs.describe().c_str(),
          cy.describe().c_str(), cr.describe().c_str());
}

// ---- SwiGLU (kernels/swiglu.cu): the fused [gate | up] layout, ld = 2*cols ----------------------
void check_swiglu(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  const Tensor gu = random_tensor(rng, d, 2 * n, -6.f, 6.f), g = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor out(d, n), want(d, n), dgu(d, 2 * n), want_dgu(d, 2 * n);
  poison(out);
  poison(dgu);
  DeviceBuffer bgu(gu), bg(g), bout(out), bdgu(dgu);
  char *dgu_dev = static_cast<char *>(bgu.get());
  char *ddgu = static_cast<char *>(bdgu.get());
  const relat_status s1 = relat_cuda_swiglu_forward(dgu_dev, dgu_dev + cols * es, 2 * cols, bout.get(),
                                                    rows, cols, d, nullptr);
  const relat_status s2 = relat_cuda_swiglu_backward(bg.get(), dgu_dev, dgu_dev + cols * es, 2 * cols,
                                                     ddgu, ddgu + cols * es, 2 * cols, rows, cols, d,
                                                     nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  const char *hgu = static_cast<const char *>(gu.data());
  char *hdgu = static_cast<char *>(want_dgu.data());
  relat_cpu_swiglu_forward(hgu, hgu + cols * es, 2 * cols, want.data(), rows, cols, d, nullptr);
  relat_cpu_swiglu_backward(g.data(), hgu, hgu + cols * es, 2 * cols, hdgu, hdgu + cols * es,
                            2 * cols, rows, cols, d, nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "swiglu %s rows=%lld cols=%lld", dtype_name(d), (long long)rows,
                (long long)cols);
  if (!c.check(s1 == RELAT_OK && s2 == RELAT_OK && sync == cudaSuccess, "%s: status %d/%d (%s), sync %s",
               what, s1, s2, relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  bout.download(out);
  bdgu.download(dgu);
  const Comparison co = compare(out, want, tolerance(d)), cg = compare(dgu, want_dgu, tolerance(d));
  c.check(co.ok, "%s: out %s", what, co.describe().c_str());
  c.check(cg.ok, "%s: dgate|dup %s", what, cg.describe().c_str());
}

// ---- Embedding gather (kernels/embedding.cu), with bad ids -------------------------------------
void check_embedding(Counter &c, Rng &rng, relat_dtype d, int64_t n, int64_t vocab, int64_t dim) {
  const Tensor table = random_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t &id : ids) id = rng.integer(0, vocab - 1);
  const int64_t bad = n / 2;
  ids[size_t(bad)] = vocab;  // out of range: zero row, flag = bad
  Tensor out(d, size_t(n * dim)), want(d, size_t(n * dim));
  poison(out);
  DeviceBuffer btable(table), bout(out), bids(ids.size() * 8), bflag(8);
  cuda_ok(cudaMemcpy(bids.get(), ids.data(), ids.size() * 8, cudaMemcpyHostToDevice), "ids");
  const int64_t minus_one = -1;
  cuda_ok(cudaMemcpy(bflag.get(), &minus_one, 8, cudaMemcpyHostToDevice), "flag");
  const relat_status s = relat_cuda_embedding_forward(bids.get(), RELAT_I64, n, btable.get(), vocab,
                                                      dim, bout.get(), static_cast<int64_t *>(bflag.get()),
                                                      d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  char what[112];
  std::snprintf(what, sizeof what, "embedding %s n=%lld vocab=%lld dim=%lld", dtype_name(d),
                (long long)n, (long long)vocab, (long long)dim);
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  int64_t flag = 0;
  cuda_ok(cudaMemcpy(&flag, bflag.get(), 8, cudaMemcpyDeviceToHost), "flag");
  bout.download(out);
  // The expected output: the CPU twin on the good ids, zeros for the bad row.
  std::vector<int64_t> good = ids;
  good[size_t(bad)] = 0;
  relat_cpu_embedding_forward(good.data(), RELAT_I64, n, table.data(), vocab, dim, want.data(),
                              nullptr, d, nullptr);
  std::memset(static_cast<char *>(want.data()) + size_t(bad * dim) * dtype_size(d), 0,
              size_t(dim) * dtype_size(d));
  const bool same = std::memcmp(out.data(), want.data(), out.size_bytes()) == 0;
  c.check(same && flag == bad, "%s: rows %s, flag %lld (want %lld)", what, same ? "equal" : "differ",
          (long long)flag, (long long)bad);
}

template <class Launch> void bench_one(FILE *csv, const char *kernel, relat_dtype d, int64_t rows,
                                       int64_t cols, double bytes, Launch launch) {
  relat_status status = RELAT_OK;
  const double us = median_us([&] {
    const relat_status s = launch();
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "%s bench failed: %s\n", kernel, relat_cuda_last_error());
    std::exit(1);
  }
  std::fprintf(csv, "%s,%s,%lld,%lld,%.3f,%.0f\n", kernel, dtype_name(d), (long long)rows,
               (long long)cols, us, bytes);
  std::printf("%s %s %lldx%lld: %.1f us\n", kernel, dtype_name(d), (long long)rows, (long long)cols,
              us);
}

void bench_norms(FILE *csv, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  DeviceBuffer x(timing_tensor(rng, d, n, -3.f, 3.f)), w(timing_tensor(rng, d, size_t(cols), 0.5f, 1.5f)),
      g(timing_tensor(rng, d, n, -1.f, 1.f)), gn(timing_tensor(rng, d, n, -1.f, 1.f));
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
  bench_one(csv, "rmsnorm_backward_dweight", d, rows, cols, 3 * tensor + weight + stat + cols * 4.0, [&] {
    return relat_cuda_rmsnorm_backward(g.get(), x.get(), w.get(), r, y.get(),
                                       static_cast<float *>(dw.get()), work.get(), ws, rows, cols, d,
                                       nullptr);
  });
  bench_one(csv, "add_rmsnorm_forward", d, rows, cols, 4 * tensor + weight + stat, [&] {
    return relat_cuda_add_rmsnorm_forward(x.get(), g.get(), s.get(), w.get(), y.get(), r, rows, cols,
                                          1e-6f, d, nullptr);
  });
  bench_one(csv, "add_rmsnorm_backward", d, rows, cols, 4 * tensor + weight + stat, [&] {
    return relat_cuda_add_rmsnorm_backward(g.get(), gn.get(), x.get(), w.get(), r, s.get(), nullptr,
                                           nullptr, 0, rows, cols, d, nullptr);
  });
}

void bench_swiglu(FILE *csv, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  DeviceBuffer gu(timing_tensor(rng, d, 2 * n, -6.f, 6.f)), g(timing_tensor(rng, d, n, -1.f, 1.f));
  DeviceBuffer out(n * es), dgu(2 * n * es);
  char *p = static_cast<char *>(gu.get());
  char *dp = static_cast<char *>(dgu.get());
  const double tensor = double(n) * es;
  bench_one(csv, "swiglu_forward", d, rows, cols, 3 * tensor, [&] {
    return relat_cuda_swiglu_forward(p, p + cols * es, 2 * cols, out.get(), rows, cols, d, nullptr);
  });
  bench_one(csv, "swiglu_backward", d, rows, cols, 5 * tensor, [&] {
    return relat_cuda_swiglu_backward(g.get(), p, p + cols * es, 2 * cols, dp, dp + cols * es,
                                      2 * cols, rows, cols, d, nullptr);
  });
}

void bench_embedding(FILE *csv, Rng &rng, relat_dtype d, int64_t n, int64_t dim) {
  const int64_t vocab = 151936;
  const size_t es = dtype_size(d);
  DeviceBuffer table(timing_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f)), out(size_t(n * dim) * es),
      ids(size_t(n) * 8);
  std::vector<int64_t> h(static_cast<size_t>(n));
  for (int64_t &id : h) id = rng.integer(0, vocab - 1);
  cuda_ok(cudaMemcpy(ids.get(), h.data(), h.size() * 8, cudaMemcpyHostToDevice), "ids");
  bench_one(csv, "embedding", d, n, dim, 2.0 * double(n * dim) * es + n * 8.0, [&] {
    return relat_cuda_embedding_forward(ids.get(), RELAT_I64, n, table.get(), vocab, dim, out.get(),
                                        nullptr, d, nullptr);
  });
}

struct Shape {
  int64_t rows, cols;
};

// ---- RoPE ---------------------------------------------------------------------------------------
std::vector<float> rope_inv_freq(int64_t head_dim) {
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.f / std::pow(1e6f, float(2 * i) / float(head_dim));
  return f;
}

void check_rope(Counter &c, Rng &rng, relat_dtype d, int64_t tokens, int64_t qh, int64_t kvh,
                int64_t head_dim, bool backward) {
  const size_t nq = size_t(tokens * qh * head_dim), nk = size_t(tokens * kvh * head_dim);
  const Tensor q = random_tensor(rng, d, nq, -3.f, 3.f), k = random_tensor(rng, d, nk, -3.f, 3.f);
  Tensor qo(d, nq), ko(d, nk), want_q(d, nq), want_k(d, nk);
  poison(qo);
  poison(ko);
  std::vector<int64_t> pos(static_cast<size_t>(tokens));
  for (auto &p : pos) p = rng.integer(0, 40000);
  const std::vector<float> freq = rope_inv_freq(head_dim);
  DeviceBuffer dq(q), dk(k), dqo(qo), dko(ko), dpos(pos.size() * 8), dfreq(freq.size() * 4);
  dpos.upload_raw(pos.data(), pos.size() * 8);
  dfreq.upload_raw(freq.data(), freq.size() * 4);
  auto fn = backward ? relat_cuda_rope_backward : relat_cuda_rope_forward;
  auto cpu = backward ? relat_cpu_rope_backward : relat_cpu_rope_forward;
  const relat_status s = fn(dq.get(), kvh ? dk.get() : nullptr, dqo.get(), kvh ? dko.get() : nullptr,
                            static_cast<const int64_t *>(dpos.get()),
                            static_cast<const float *>(dfreq.get()), tokens, qh, kvh, head_dim,
                            qh * head_dim, kvh * head_dim, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  cpu(q.data(), kvh ? k.data() : nullptr, want_q.data(), kvh ? want_k.data() : nullptr, pos.data(),
      freq.data(), tokens, qh, kvh, head_dim, qh * head_dim, kvh * head_dim, d, nullptr);
  char what[128];
  std::snprintf(what, sizeof what, "rope %s %s tokens=%lld heads=%lld/%lld D=%lld",
                backward ? "backward" : "forward", dtype_name(d), (long long)tokens, (long long)qh,
                (long long)kvh, (long long)head_dim);
  if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, s,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  dqo.download(qo);
  const Comparison cq = compare(qo, want_q, tolerance(d));
  c.check(cq.ok, "%s: q %s", what, cq.describe().c_str());
  if (kvh) {
    dko.download(ko);
    const Comparison ck = compare(ko, want_k, tolerance(d));
    c.check(ck.ok, "%s: k %s", what, ck.describe().c_str());
  }
}

void bench_rope(FILE *csv, Rng &rng, relat_dtype d, int64_t tokens, int64_t qh) {
  const int64_t kvh = 8, head_dim = 128;
  const size_t es = dtype_size(d), nq = size_t(tokens * qh * head_dim),
               nk = size_t(tokens * kvh * head_dim);
  DeviceBuffer dq(timing_tensor(rng, d, nq, -3.f, 3.f)), dk(timing_tensor(rng, d, nk, -3.f, 3.f));
  DeviceBuffer dqo(nq * es), dko(nk * es), dpos(size_t(tokens) * 8), dfreq(size_t(head_dim / 2) * 4);
  std::vector<int64_t> pos(static_cast<size_t>(tokens));
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int64_t(i) + 37;
  const std::vector<float> freq = rope_inv_freq(head_dim);
  dpos.upload_raw(pos.data(), pos.size() * 8);
  dfreq.upload_raw(freq.data(), freq.size() * 4);
  relat_status status = RELAT_OK;
  const double us = median_us([&] {
    const relat_status s = relat_cuda_rope_forward(
        dq.get(), dk.get(), dqo.get(), dko.get(), static_cast<const int64_t *>(dpos.get()),
        static_cast<const float *>(dfreq.get()), tokens, qh, kvh, head_dim, qh * head_dim,
        kvh * head_dim, d, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "rope bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  // Bytes that must move: read q and k, write them, read the positions.
  const double bytes = double(nq + nk) * es * 2 + double(tokens) * 8;
  std::fprintf(csv, "rope_forward,%s,%lld,%lld,%.3f,%.0f\n", dtype_name(d), (long long)tokens,
               (long long)qh, us, bytes);
  std::printf("rope_forward %s tokens=%lld q_heads=%lld: %.1f us\n", dtype_name(d),
              (long long)tokens, (long long)qh, us);
}

// ---- AdamW --------------------------------------------------------------------------------------
struct DeviceList {
  std::vector<std::unique_ptr<DeviceBuffer>> p, g, m, v;
  std::vector<void *> pp;
  std::vector<const void *> gp;
  std::vector<float *> mp, vp;
  std::vector<int64_t> numel;
};

void check_adamw(Counter &c, Rng &rng, relat_dtype pd, relat_dtype gd,
                 const std::vector<int64_t> &sizes) {
  std::vector<Tensor> hp, hg, hm, hv;
  DeviceList dl;
  for (int64_t n : sizes) {
    hp.push_back(random_tensor(rng, pd, size_t(n), -2.f, 2.f));
    hg.push_back(random_tensor(rng, gd, size_t(n), -1.f, 1.f));
    hm.push_back(random_tensor(rng, RELAT_F32, size_t(n), -0.1f, 0.1f));
    hv.push_back(random_tensor(rng, RELAT_F32, size_t(n), 0.f, 0.01f));
    dl.p.push_back(std::make_unique<DeviceBuffer>(hp.back()));
    dl.g.push_back(std::make_unique<DeviceBuffer>(hg.back()));
    dl.m.push_back(std::make_unique<DeviceBuffer>(hm.back()));
    dl.v.push_back(std::make_unique<DeviceBuffer>(hv.back()));
    dl.pp.push_back(dl.p.back()->get());
    dl.gp.push_back(dl.g.back()->get());
    dl.mp.push_back(static_cast<float *>(dl.m.back()->get()));
    dl.vp.push_back(static_cast<float *>(dl.v.back()->get()));
    dl.numel.push_back(n);
  }
  std::vector<void *> hpp;
  std::vector<const void *> hgp;
  std::vector<float *> hmp, hvp;
  for (size_t i = 0; i < sizes.size(); ++i) {
    hpp.push_back(hp[i].data());
    hgp.push_back(hg[i].data());
    hmp.push_back(static_cast<float *>(hm[i].data()));
    hvp.push_back(static_cast<float *>(hv[i].data()));
  }
  char what[128];
  std::snprintf(what, sizeof what, "adamw params %s grads %s, %zu tensors", dtype_name(pd),
                dtype_name(gd), sizes.size());
  for (int64_t step = 1; step <= 3; ++step) {
    const relat_status s = relat_cuda_adamw_step(dl.pp.data(), dl.gp.data(), dl.mp.data(),
                                                 dl.vp.data(), dl.numel.data(),
                                                 int64_t(sizes.size()), pd, gd, 1e-2, 0.9, 0.999,
                                                 1e-8, 0.01, step, nullptr);
    const cudaError_t sync = cudaDeviceSynchronize();
    relat_cpu_adamw_step(hpp.data(), hgp.data(), hmp.data(), hvp.data(), dl.numel.data(),
                         int64_t(sizes.size()), pd, gd, 1e-2, 0.9, 0.999, 1e-8, 0.01, step, nullptr);
    if (!c.check(s == RELAT_OK && sync == cudaSuccess, "%s step %lld: status %d (%s), sync %s",
                 what, (long long)step, s, relat_cuda_last_error(), cudaGetErrorName(sync)))
      return;
  }
  int bad = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Tensor p(pd, size_t(sizes[i])), m(RELAT_F32, size_t(sizes[i])), v(RELAT_F32, size_t(sizes[i]));
    dl.p[i]->download(p);
    dl.m[i]->download(m);
    dl.v[i]->download(v);
    bad += !(compare(p, hp[i], tolerance(pd)).ok && compare(m, hm[i], tolerance(RELAT_F32)).ok &&
             compare(v, hv[i], tolerance(RELAT_F32)).ok);
  }
  c.check(bad == 0, "%s, 3 steps: %d tensors differ from the CPU twin", what, bad);
}

// LoRA rank 8 on the q/k/v/o/gate/up/down projections of every Qwen3 layer.
std::vector<int64_t> lora_sizes(bool qwen3_8b) {
  const int64_t layers = qwen3_8b ? 36 : 28, hidden = qwen3_8b ? 4096 : 1024,
                inter = qwen3_8b ? 12288 : 3072, q_out = (qwen3_8b ? 32 : 16) * 128, kv = 1024;
  const int64_t proj[][2] = {{hidden, q_out}, {hidden, kv},    {hidden, kv},   {q_out, hidden},
                             {hidden, inter}, {hidden, inter}, {inter, hidden}};
  std::vector<int64_t> sizes;
  for (int64_t l = 0; l < layers; ++l)
    for (const auto &p : proj) sizes.insert(sizes.end(), {8 * p[0], 8 * p[1]});
  return sizes;
}

void bench_adamw(FILE *csv, Rng &rng, bool qwen3_8b) {
  const std::vector<int64_t> sizes = lora_sizes(qwen3_8b);
  DeviceList dl;
  int64_t total = 0;
  for (int64_t n : sizes) {
    dl.p.push_back(std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), -1.f, 1.f)));
    dl.g.push_back(std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), -1.f, 1.f)));
    dl.m.push_back(std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), 0.f, 1e-3f)));
    dl.v.push_back(std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), 0.f, 1e-3f)));
    dl.pp.push_back(dl.p.back()->get());
    dl.gp.push_back(dl.g.back()->get());
    dl.mp.push_back(static_cast<float *>(dl.m.back()->get()));
    dl.vp.push_back(static_cast<float *>(dl.v.back()->get()));
    dl.numel.push_back(n);
    total += n;
  }
  relat_status status = RELAT_OK;
  int64_t step = 0;
  const double us = median_us([&] {
    const relat_status s = relat_cuda_adamw_step(dl.pp.data(), dl.gp.data(), dl.mp.data(),
                                                 dl.vp.data(), dl.numel.data(),
                                                 int64_t(sizes.size()), RELAT_F32, RELAT_F32, 2e-5,
                                                 0.9, 0.999, 1e-8, 0.0, ++step, nullptr);
    if (s != RELAT_OK) status = s;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "adamw bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  // Bytes that must move: params read and written, grads read, both moments read and written.
  const double bytes = double(total) * (4 * 2 + 4 + 16);
  std::fprintf(csv, "adamw,f32,%zu,%lld,%.3f,%.0f\n", sizes.size(), (long long)total, us, bytes);
  std::printf("adamw f32 %zu tensors, %lld parameters: %.1f us\n", sizes.size(), (long long)total, us);
}

// ---- Sampling -----------------------------------------------------------------------------------
struct SampleSetting {
  const char *name;
  float temperature;
  int64_t top_k;
  float top_p;
};
const SampleSetting kSampleSettings[] = {
    {"greedy", 0.f, 0, 1.f},  {"temperature", 0.7f, 0, 1.f}, {"topk", 0.6f, 20, 1.f},
    {"topp", 0.6f, 0, 0.95f}, {"topk_topp", 0.6f, 20, 0.95f}, {"topk3000", 1.3f, 3000, 0.5f}};

// The ids must equal the CPU twin's exactly (relat.h: one function, computed bit for bit).
void check_sample(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t vocab, bool peaked) {
  Tensor logits(d, size_t(rows * vocab));
  for (size_t i = 0; i < logits.n; ++i) {
    const float v = peaked ? (rng.integer(0, 199) == 0 ? rng.uniform(10.f, 14.f) : rng.uniform(-30.f, -5.f))
                           : float(rng.integer(-40, 40)) * 0.25f;  // many ties
    store(logits.data(), d, i, v);
  }
  int64_t ws_bytes = 0;
  relat_cpu_sample_workspace_bytes(rows, vocab, &ws_bytes);
  std::vector<unsigned char> ws(static_cast<size_t>(ws_bytes));
  DeviceBuffer dl(logits), dout(size_t(rows) * 8);
  for (const SampleSetting &s : kSampleSettings) {
    for (uint64_t step = 0; step < 3; ++step) {
      std::vector<int64_t> got(static_cast<size_t>(rows), -1), want(static_cast<size_t>(rows), -2);
      const relat_status st = relat_cuda_sample(dl.get(), rows, vocab, vocab, s.temperature, s.top_k,
                                                s.top_p, 99, step, static_cast<int64_t *>(dout.get()),
                                                nullptr, 0, d, nullptr);
      const cudaError_t sync = cudaDeviceSynchronize();
      relat_cpu_sample(logits.data(), rows, vocab, vocab, s.temperature, s.top_k, s.top_p, 99, step,
                       want.data(), ws.data(), ws_bytes, d, nullptr);
      char what[128];
      std::snprintf(what, sizeof what, "sample %s %s %s rows=%lld vocab=%lld step=%llu", s.name,
                    dtype_name(d), peaked ? "peaked" : "ties", (long long)rows, (long long)vocab,
                    (unsigned long long)step);
      if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, st,
                   relat_cuda_last_error(), cudaGetErrorName(sync)))
        continue;
      dout.download_raw(got.data(), got.size() * 8);
      int differ = 0;
      for (size_t r = 0; r < got.size(); ++r) differ += got[r] != want[r];
      c.check(differ == 0, "%s: %d rows differ from the CPU twin", what, differ);
    }
  }
}

void bench_sample(FILE *csv, Rng &rng, const SampleSetting &s, int64_t rows) {
  const int64_t vocab = 151936;
  DeviceBuffer dl(timing_tensor(rng, RELAT_F32, size_t(rows * vocab), -9.f, 9.f)),
      dout(size_t(rows) * 8);
  relat_status status = RELAT_OK;
  uint64_t step = 0;
  const double us = median_us([&] {
    const relat_status st = relat_cuda_sample(dl.get(), rows, vocab, vocab, s.temperature, s.top_k,
                                              s.top_p, 1234, step++,
                                              static_cast<int64_t *>(dout.get()), nullptr, 0,
                                              RELAT_F32, nullptr);
    if (st != RELAT_OK) status = st;
  });
  if (status != RELAT_OK) {
    std::fprintf(stderr, "sample bench failed: %s\n", relat_cuda_last_error());
    std::exit(1);
  }
  const double bytes = double(rows) * double(vocab) * 4;  // one read of the logits
  std::fprintf(csv, "sample_%s,f32,%lld,%lld,%.3f,%.0f\n", s.name, (long long)rows,
               (long long)vocab, us, bytes);
  std::printf("sample_%s f32 rows=%lld vocab=%lld: %.1f us\n", s.name, (long long)rows,
              (long long)vocab, us);
}

}  // namespace

int main(int argc, char **argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  Rng rng(test_seed());
  const relat_dtype dtypes[] = {RELAT_F32, RELAT_BF16, RELAT_F16};
  int devices = relat_cuda_device_count();
  std::printf("relat_cuda %s built for %s, %d device(s)\n", relat_cuda_version(),
              relat_cuda_architectures(), devices);
  if (devices < 1) return 2;
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device 0: %s, sm_%d%d, %d SMs, %.0f GiB\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, double(prop.totalGlobalMem) / (1 << 30));

  if (mode == "check") {
    Counter c;
    std::vector<Shape> shapes = {{1, 1},   {1, 7},    {3, 31},   {4, 33},   {5, 100},
                                 {2, 129}, {7, 1000}, {2, 4097}, {16, 2560}};
    if (!quick) shapes.insert(shapes.end(), {{4096, 4096}, {1024, 5120}, {3, 100000}, {65536, 64}});
    for (relat_dtype d : dtypes)
      for (const Shape &s : shapes) check_rmsnorm(c, rng, d, s.rows, s.cols);
    // Attention: Tq = 1, prefix 0 and > 0, GQA ratios 1, 4 and 8, lengths off the 32-tiles.
    std::vector<AttnShape> attn = {{1, 0, 4, 4, 64},   {1, 37, 8, 1, 128}, {17, 0, 8, 2, 64},
                                   {50, 77, 4, 4, 128}, {40, 29, 16, 2, 64}};
    if (!quick) attn.insert(attn.end(), {{256, 200, 16, 8, 128}, {333, 500, 32, 8, 128}});
    for (relat_dtype d : dtypes)
      for (const AttnShape &s : attn) check_attention(c, rng, d, s);
    std::vector<int64_t> lens = {1, 1000};
    if (!quick) lens.push_back(32768);
    for (relat_dtype d : dtypes)
      for (int64_t len : lens) {
        check_decode(c, rng, d, len, 16, 8, 128);
        check_decode(c, rng, d, len, 8, 1, 64);
      }
    for (relat_dtype d : dtypes) {
      check_linear_cross_entropy(c, rng, d, 1, 64, 1000, 0.0);
      check_linear_cross_entropy(c, rng, d, 37, 136, 20000, 0.3);  // past one vocabulary chunk
      check_latent_soft(c, rng, d, 1, 136, 5000, false);
      check_latent_soft(c, rng, d, 9, 72, 3001, true);
      check_row_rescale(c, rng, d, 5, 1000);
      if (!quick) {
        check_linear_cross_entropy(c, rng, d, 300, 1024, 32000, 0.2);
        check_latent_soft(c, rng, d, 1, 4096, 151936, false);
      }
    }
    if (!quick) check_linear_cross_entropy(c, rng, RELAT_BF16, 512, 4096, 151936, 0.1);
    // RMSNorm backward, residual add + RMSNorm, SwiGLU: awkward shapes, QK-norm rows (T*H x 128),
    // and a row whose fp32 dweight partials exceed shared memory (12288).
    std::vector<Shape> norm = {{1, 1}, {1, 7}, {4, 33}, {5, 100}, {2, 129}, {7, 1000}, {2, 4097},
                               {300, 128}, {2, 12288}};
    if (!quick) norm.insert(norm.end(), {{1024, 4096}, {16384, 128}, {512, 12288}});
    for (relat_dtype d : dtypes)
      for (const Shape &s : norm) {
        check_norm_backward(c, rng, d, s.rows, s.cols, false);
        check_norm_backward(c, rng, d, s.rows, s.cols, true);
        check_add_rmsnorm(c, rng, d, s.rows, s.cols);
        check_swiglu(c, rng, d, s.rows, s.cols);
      }
    for (relat_dtype d : dtypes) {
      check_embedding(c, rng, d, 1, 1, 1);
      check_embedding(c, rng, d, 33, 97, 129);
      check_embedding(c, rng, d, quick ? 64 : 4096, 5000, 1024);
    }
    const int64_t rope_shapes[][4] = {{1, 1, 1, 2}, {3, 5, 1, 6}, {7, 4, 2, 66}, {5, 2, 0, 10},
                                      {1, 16, 8, 128}, {33, 32, 8, 128}, {9, 7, 3, 254}};
    for (relat_dtype d : dtypes)
      for (const auto &r : rope_shapes)
        for (bool backward : {false, true}) check_rope(c, rng, d, r[0], r[1], r[2], r[3], backward);
    if (!quick)
      for (relat_dtype d : dtypes) check_rope(c, rng, d, 512, 32, 8, 128, false);
    const std::vector<int64_t> awkward = {1, 0, 7, 3, 33, 129, 4095, 4096, 4097, 10001, 2, 257};
    const relat_dtype pg[][2] = {{RELAT_F32, RELAT_F32}, {RELAT_BF16, RELAT_BF16},
                                 {RELAT_BF16, RELAT_F32}, {RELAT_F16, RELAT_F16}};
    for (const auto &p : pg) check_adamw(c, rng, p[0], p[1], awkward);
    if (!quick) {
      std::vector<int64_t> many;
      for (int i = 0; i < 600; ++i) many.push_back(rng.integer(0, 5000));
      check_adamw(c, rng, RELAT_F32, RELAT_F32, many);
      check_adamw(c, rng, RELAT_F32, RELAT_F32, lora_sizes(false));
    }
    for (relat_dtype d : dtypes) {
      for (int64_t vocab : {1, 7, 50, 1000, 4099}) {
        check_sample(c, rng, d, 3, vocab, false);
        check_sample(c, rng, d, 3, vocab, true);
      }
    }
    if (!quick) {
      for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
        check_sample(c, rng, d, 4, 151936, false);
        check_sample(c, rng, d, 4, 151936, true);
      }
    }
    return c.finish();
  }
  if (mode == "bench" && argc > 2) {
    FILE *csv = std::fopen(argv[2], "w");
    if (!csv) return 2;
    std::fprintf(csv, "kernel,dtype,rows,cols,us,bytes\n");
    // Prefill-sized batches of Qwen3 hidden states: 128-640 MiB moved per call.
    const Shape shapes[] = {{65536, 1024}, {32768, 2560}, {16384, 5120}};
    for (relat_dtype d : dtypes)
      for (const Shape &s : shapes) bench_rmsnorm(csv, rng, d, s.rows, s.cols);
    for (relat_dtype d : dtypes) {
      bench_attention(csv, rng, d, 256, 456);    // the reconstruction segment after a prompt
      bench_attention(csv, rng, d, 2048, 2048);  // a long training sequence
      bench_decode(csv, rng, d, 4096);
      bench_decode(csv, rng, d, 32768);
    }
    // The reconstruction loss at Qwen3-8B size, and the latent step of one question.
    for (relat_dtype d : {RELAT_BF16, RELAT_F32}) bench_linear_cross_entropy(csv, rng, d, 512, 4096);
    for (relat_dtype d : {RELAT_BF16, RELAT_F32}) bench_latent_soft(csv, rng, d, 1, 4096);
    // RMSNorm backward and residual forms on the rmsnorm shapes; QK-norm (rmsnorm at cols = 128);
    // SwiGLU at the Qwen3-0.6B / 8B intermediate widths; embedding rows of a 151936-row table.
    for (relat_dtype d : {RELAT_BF16, RELAT_F32}) {
      for (const Shape &s : shapes) bench_norms(csv, rng, d, s.rows, s.cols);
      bench_rmsnorm(csv, rng, d, 65536 * 32, 128);
      bench_swiglu(csv, rng, d, 16384, 3072);
      bench_swiglu(csv, rng, d, 4096, 12288);
      bench_embedding(csv, rng, d, 16384, 1024);
      bench_embedding(csv, rng, d, 16384, 4096);
    }
    // RoPE at Qwen3-0.6B / -8B head counts (16 / 32 query heads, 8 KV heads, head_dim 128).
    for (relat_dtype d : {RELAT_F32, RELAT_BF16})
      for (int64_t tokens : {1, 512, 8192})
        for (int64_t qh : {16, 32}) bench_rope(csv, rng, d, tokens, qh);
    bench_adamw(csv, rng, false);
    bench_adamw(csv, rng, true);
    for (const SampleSetting &s : kSampleSettings)
      for (int64_t rows : {1, 64}) bench_sample(csv, rng, s, rows);
    std::fclose(csv);
    return 0;
  }
  std::fprintf(stderr, "usage: %s check [--quick] | bench <out.csv>\n", argv[0]);
  return 2;
}
