// Fused linear cross-entropy (kernels/linear_cross_entropy.cu) against the CPU twin
// (native/src/linear_cross_entropy.cpp), and its timings.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

void check_linear_cross_entropy(Counter &c, Rng &rng, relat_dtype d, int64_t tokens, int64_t hidden,
                                int64_t vocab, double ignored) {
  const size_t nh = size_t(tokens * hidden), nu = size_t(vocab * hidden);
  const float scale = 2.f / std::sqrt(float(hidden));
  const Tensor h = random_tensor(rng, d, nh, -1.5f, 1.5f),
               u = random_tensor(rng, d, nu, -scale, scale);
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
                     cudaMemcpyHostToDevice),
          "upload targets");
  const relat_status s =
      relat_cuda_linear_cross_entropy(dhh.get(), du.get(), static_cast<const int64_t *>(dt.get()),
                                      -100, static_cast<float *>(dloss.get()), ddh.get(), tokens,
                                      hidden, vocab, dws.get(), ws_gpu, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  std::vector<unsigned char> wcpu(static_cast<size_t>(ws_cpu));
  relat_cpu_linear_cross_entropy(h.data(), u.data(), targets.data(), -100,
                                 static_cast<float *>(want_loss.data()), want.data(), tokens,
                                 hidden, vocab, wcpu.data(), ws_cpu, d, nullptr);
  char what[120];
  std::snprintf(what, sizeof what, "linear_cross_entropy %s T=%lld d=%lld V=%lld", dtype_name(d),
                (long long)tokens, (long long)hidden, (long long)vocab);
  if (!device_ok(c, what, s, sync)) return;
  ddh.download(dh);
  dloss.download(loss);
  const double lg = loss.at(0), lw = want_loss.at(0);
  c.check(std::fabs(lg - lw) <= 1e-5 * std::fabs(lw) + 1e-6, "%s: loss %.9g want %.9g", what, lg,
          lw);
  double err = 0;
  bool ok;
  ok = close_relative(dh, want, relative_bound(d), &err);
  c.check(ok, "%s: dh error %.3g of max", what, err);
}

// Fused cross-entropy, forward + dL/dH. Writes rows = tokens, cols = hidden (vocab 151,936, the
// Qwen vocabulary). Compute-bound: bytes is the traffic floor (U once per 128-token block, H, dH),
// and the line printed also gives TFLOP/s against the 4 T V d FLOPs of the two GEMMs.
void bench_linear_cross_entropy(FILE *csv, Rng &rng, relat_dtype d, int64_t tokens,
                                int64_t hidden) {
  const int64_t vocab = kQwenVocab;
  const size_t es = dtype_size(d);
  const float scale = 2.f / std::sqrt(float(hidden));
  DeviceBuffer dh_in(timing_tensor(rng, d, size_t(tokens * hidden), -1.5f, 1.5f)),
      du(timing_tensor(rng, d, size_t(vocab * hidden), -scale, scale));
  std::vector<int64_t> targets(static_cast<size_t>(tokens));
  for (auto &t : targets) t = rng.integer(0, vocab - 1);
  int64_t ws = 0;
  relat_cuda_linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, d, &ws);
  DeviceBuffer dt(targets.size() * 8), dloss(4), ddh(size_t(tokens * hidden) * es),
      dws(static_cast<size_t>(ws));
  cuda_ok(cudaMemcpy(dt.get(), targets.data(), targets.size() * 8, cudaMemcpyHostToDevice),
          "targets");
  const double us = timed_us(
      "linear_cross_entropy",
      [&] {
        return relat_cuda_linear_cross_entropy(dh_in.get(), du.get(),
                                               static_cast<const int64_t *>(dt.get()), -100,
                                               static_cast<float *>(dloss.get()), ddh.get(), tokens,
                                               hidden, vocab, dws.get(), ws, d, nullptr);
      },
      3, 15);
  const double bytes =
      double((tokens + 127) / 128) * vocab * hidden * es + 2.0 * tokens * hidden * es;
  const double flops = 4.0 * tokens * vocab * hidden;
  // FLOP floor: the two GEMMs (logits h U^T and dh = dlogits U), 2 * 2 T V d; the softmax's
  // T V exponentials are not counted (1 / (4 d) of the GEMMs).
  std::fprintf(csv, "linear_cross_entropy,%s,%lld,%lld,%.3f,%.0f,%.0f\n", dtype_name(d),
               (long long)tokens, (long long)hidden, us, bytes, flops);
  std::printf(
      "linear_cross_entropy %s T=%lld d=%lld V=%lld: %.1f us, %.1f TFLOP/s, workspace %.1f MB\n",
      dtype_name(d), (long long)tokens, (long long)hidden, (long long)vocab, us, flops / us / 1e6,
      ws / 1e6);
}

void check(Counter &c, Rng &rng, bool quick) {
  for (relat_dtype d : kDtypes) {
    check_linear_cross_entropy(c, rng, d, 1, 64, 1000, 0.0);
    check_linear_cross_entropy(c, rng, d, 37, 136, 20000, 0.3);  // past one vocabulary chunk
    if (!quick) check_linear_cross_entropy(c, rng, d, 300, 1024, 32000, 0.2);
  }
  if (!quick) check_linear_cross_entropy(c, rng, RELAT_BF16, 512, 4096, kQwenVocab, 0.1);
}

void bench(FILE *csv, Rng &rng) {
  // The reconstruction loss at Qwen3-8B size.
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) bench_linear_cross_entropy(csv, rng, d, 512, 4096);
}

}  // namespace

RELAT_GPU_OP("linear_cross_entropy", check, bench);
