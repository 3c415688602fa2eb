// The latent step's soft forward and backward and the row rescale (kernels/latent_step.cu) against
// the CPU twins (native/src/latent_step.cpp), and their timings.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

void check_latent_soft(Counter &c, Rng &rng, relat_dtype d, int64_t batch, int64_t hidden,
                       int64_t vocab, bool tied) {
  const size_t nh = size_t(batch * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden)), inv_tau = 1.f / 0.7f;
  const Tensor h = random_tensor(rng, d, nh, -1.5f, 1.5f),
               u = random_tensor(rng, d, nu, -scale, scale),
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
    s = relat_cuda_latent_soft_backward(
        dhh.get(), du.get(), demb.get(), static_cast<const float *>(dlse.get()),
        static_cast<const float *>(de32.get()), dde.get(), ddh.get(), batch, hidden, vocab, inv_tau,
        dwb.get(), bg, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  std::vector<unsigned char> wf(static_cast<size_t>(fc)), wb(static_cast<size_t>(bc));
  relat_cpu_latent_soft_forward(
      h.data(), u.data(), emb.data(), we.data(), static_cast<float *>(wlse.data()),
      static_cast<float *>(we32.data()), batch, hidden, vocab, inv_tau, wf.data(), fc, d, nullptr);
  relat_cpu_latent_soft_backward(h.data(), u.data(), emb.data(),
                                 static_cast<const float *>(wlse.data()),
                                 static_cast<const float *>(we32.data()), de.data(), wdh.data(),
                                 batch, hidden, vocab, inv_tau, wb.data(), bc, d, nullptr);
  char what[120];
  std::snprintf(what, sizeof what, "latent_soft %s B=%lld d=%lld V=%lld%s", dtype_name(d),
                (long long)batch, (long long)hidden, (long long)vocab, tied ? " tied" : "");
  if (!device_ok(c, what, s, sync)) return;
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
  relat_status s =
      relat_cuda_row_rescale_forward(dxx.get(), dyy.get(), rows, cols, 1.7f, 1e-6f, d, nullptr);
  if (s == RELAT_OK)
    s = relat_cuda_row_rescale_backward(dxx.get(), ddy.get(), ddx.get(), rows, cols, 1.7f, 1e-6f, d,
                                        nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  relat_cpu_row_rescale_forward(x.data(), wy.data(), rows, cols, 1.7f, 1e-6f, d, nullptr);
  relat_cpu_row_rescale_backward(x.data(), dy.data(), wdx.data(), rows, cols, 1.7f, 1e-6f, d,
                                 nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "row_rescale %s rows=%lld cols=%lld", dtype_name(d),
                (long long)rows, (long long)cols);
  if (!device_ok(c, what, s, sync)) return;
  dyy.download(y);
  ddx.download(dx);
  const Comparison cy = compare(y, wy, tolerance(d));
  c.check(cy.ok, "%s: y %s", what, cy.describe().c_str());
  double err = 0;
  bool ok;
  ok = close_relative(dx, wdx, relative_bound(d), &err);
  c.check(ok, "%s: dx error %.3g", what, err);
}

// Soft latent step, forward + backward, batch rows = rows, hidden = cols, vocab 151,936, untied.
void bench_latent_soft(FILE *csv, Rng &rng, relat_dtype d, int64_t batch, int64_t hidden) {
  const int64_t vocab = kQwenVocab;
  const size_t es = dtype_size(d), nh = size_t(batch * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden));
  DeviceBuffer dh_in(timing_tensor(rng, d, nh, -1.5f, 1.5f)),
      du(timing_tensor(rng, d, nu, -scale, scale)), demb(timing_tensor(rng, d, nu, -scale, scale)),
      dde(timing_tensor(rng, d, nh, -1.f, 1.f));
  int64_t fw = 0, bw = 0;
  relat_cuda_latent_soft_workspace_bytes(batch, hidden, vocab, d, &fw, &bw);
  DeviceBuffer de(nh * es), dlse(size_t(batch) * 4), de32(nh * 4), ddh(nh * es),
      dwf(static_cast<size_t>(fw)), dwb(static_cast<size_t>(bw));
  const double us = timed_us("latent_soft", [&] {
    const relat_status s = relat_cuda_latent_soft_forward(
        dh_in.get(), du.get(), demb.get(), de.get(), static_cast<float *>(dlse.get()),
        static_cast<float *>(de32.get()), batch, hidden, vocab, 1.f, dwf.get(), fw, d, nullptr);
    if (s != RELAT_OK) return s;
    return relat_cuda_latent_soft_backward(
        dh_in.get(), du.get(), demb.get(), static_cast<const float *>(dlse.get()),
        static_cast<const float *>(de32.get()), dde.get(), ddh.get(), batch, hidden, vocab, 1.f,
        dwb.get(), bw, d, nullptr);
  });
  const double bytes = 4.0 * double(nu) * es;  // U and E, read once per direction
  // FLOPs: forward 4 B V d (z = h U^T, then p E), backward 8 B V d (g = E de, z again, p U).
  const double flops = 12.0 * double(batch) * double(vocab) * double(hidden);
  std::fprintf(csv, "latent_soft,%s,%lld,%lld,%.3f,%.0f,%.0f\n", dtype_name(d), (long long)batch,
               (long long)hidden, us, bytes, flops);
  std::printf("latent_soft %s B=%lld d=%lld V=%lld: %.1f us (forward + backward)\n", dtype_name(d),
              (long long)batch, (long long)hidden, (long long)vocab, us);
}

void check(Counter &c, Rng &rng, bool quick) {
  for (relat_dtype d : kDtypes) {
    check_latent_soft(c, rng, d, 1, 136, 5000, false);
    check_latent_soft(c, rng, d, 9, 72, 3001, true);
    check_row_rescale(c, rng, d, 5, 1000);
    if (!quick) check_latent_soft(c, rng, d, 1, 4096, kQwenVocab, false);
  }
}

void bench(FILE *csv, Rng &rng) {
  // The latent step of one question at Qwen3-8B size.
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) bench_latent_soft(csv, rng, d, 1, 4096);
}

}  // namespace

RELAT_GPU_OP("latent_step", check, bench);
