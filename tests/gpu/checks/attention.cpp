// Training attention, forward and backward (kernels/attention.cu), against the CPU twin
// (native/src/attention.cpp), and its timings.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

struct AttnShape {
  int64_t tq, prefix, hq, hkv, d;
};

void check_attention(Counter &c, Rng &rng, relat_dtype d, AttnShape s) {
  const int64_t tk = s.tq + s.prefix, stride = s.hkv * s.d;
  const size_t nq = size_t(s.tq * s.hq * s.d), nkv = size_t(tk * s.hkv * s.d),
               nl = size_t(s.tq * s.hq);
  const float scale = 1.f / std::sqrt(float(s.d));
  const Tensor q = random_tensor(rng, d, nq, -2.f, 2.f), k = random_tensor(rng, d, nkv, -2.f, 2.f),
               v = random_tensor(rng, d, nkv, -2.f, 2.f),
               dout = random_tensor(rng, d, nq, -1.f, 1.f);
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
  if (!device_ok(c, what, st, sync, " forward")) return;
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
  DeviceBuffer dgq(grads[0]), dgk(grads[1]), dgv(grads[2]),
      dws(size_t(std::max<int64_t>(4, ws_dev)));
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
  if (!device_ok(c, what, st, sync, " backward")) return;
  dgq.download(grads[0]);
  dgk.download(grads[1]);
  dgv.download(grads[2]);
  const char *names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    const Comparison cg = compare(grads[i], want[i], scaled_tolerance(d, want[i]));
    c.check(cg.ok, "%s: %s %s", what, names[i], cg.describe().c_str());
  }
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
  const double us_fwd = timed_us("attention", [&] {
    return relat_cuda_attention_forward(q.get(), k.get(), v.get(), out.get(),
                                        static_cast<float *>(lse.get()), tq, tk, hq, hkv, dim,
                                        stride, scale, d, nullptr);
  });
  const double us_bwd = timed_us("attention", [&] {
    return relat_cuda_attention_backward(dout.get(), q.get(), k.get(), v.get(), out.get(),
                                         static_cast<const float *>(lse.get()), gq.get(), gk.get(),
                                         gv.get(), static_cast<float *>(ws.get()), ws_bytes, tq, tk,
                                         hq, hkv, dim, stride, scale, 0, d, nullptr);
  });
  const double F = double(nq), K = double(nkv), rows = double(tq * hq);
  const double prefix = double(tk - tq), pairs = double(hq) * (tq * prefix + tq * (tq + 1) / 2.0);
  const double bytes_fwd = (2 * F + 2 * K) * es + 4 * rows,
               bytes_bwd = (4 * F + 4 * K) * es + 8 * rows;
  // FLOP floors over the visible (query, key) pairs only (the causal half is not computed):
  // forward 4 D per pair (q k^T and p v), backward 10 D (s again, dp = dout v^T, dv, dq, dk).
  const double flops_fwd = 4.0 * pairs * double(dim), flops_bwd = 10.0 * pairs * double(dim);
  std::fprintf(csv, "attention_fwd,%s,%lld,%lld,%.3f,%.0f,%.0f\n", dtype_name(d), (long long)tq,
               (long long)tk, us_fwd, bytes_fwd, flops_fwd);
  std::fprintf(csv, "attention_bwd,%s,%lld,%lld,%.3f,%.0f,%.0f\n", dtype_name(d), (long long)tq,
               (long long)tk, us_bwd, bytes_bwd, flops_bwd);
  std::printf(
      "attention %s tq=%lld tk=%lld: forward %.1f us (%.1f TFLOP/s), backward %.1f us "
      "(%.1f TFLOP/s)\n",
      dtype_name(d), (long long)tq, (long long)tk, us_fwd, 4 * pairs * dim / us_fwd * 1e-6, us_bwd,
      10 * pairs * dim / us_bwd * 1e-6);
}

void check(Counter &c, Rng &rng, bool quick) {
  // Tq = 1, prefix 0 and > 0, GQA ratios 1, 4 and 8, lengths off the 32-tiles.
  std::vector<AttnShape> attn = {{1, 0, 4, 4, 64},
                                 {1, 37, 8, 1, 128},
                                 {17, 0, 8, 2, 64},
                                 {50, 77, 4, 4, 128},
                                 {40, 29, 16, 2, 64}};
  if (!quick) attn.insert(attn.end(), {{256, 200, 16, 8, 128}, {333, 500, 32, 8, 128}});
  for (relat_dtype d : kDtypes)
    for (const AttnShape &s : attn) check_attention(c, rng, d, s);
}

void bench(FILE *csv, Rng &rng) {
  for (relat_dtype d : kDtypes) {
    bench_attention(csv, rng, d, 256, 456);    // the reconstruction segment after a prompt
    bench_attention(csv, rng, d, 2048, 2048);  // a long training sequence
  }
}

}  // namespace

RELAT_GPU_OP("attention", check, bench);
