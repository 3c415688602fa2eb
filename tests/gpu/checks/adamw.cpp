// The multi-tensor AdamW step (kernels/adamw.cu) against the CPU twin (native/src/adamw.cpp), and
// its timings.
#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

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
    const relat_status s = relat_cuda_adamw_step(
        dl.pp.data(), dl.gp.data(), dl.mp.data(), dl.vp.data(), dl.numel.data(),
        int64_t(sizes.size()), pd, gd, 1e-2, 0.9, 0.999, 1e-8, 0.01, step, nullptr);
    const cudaError_t sync = cudaDeviceSynchronize();
    relat_cpu_adamw_step(hpp.data(), hgp.data(), hmp.data(), hvp.data(), dl.numel.data(),
                         int64_t(sizes.size()), pd, gd, 1e-2, 0.9, 0.999, 1e-8, 0.01, step,
                         nullptr);
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
    dl.p.push_back(
        std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), -1.f, 1.f)));
    dl.g.push_back(
        std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), -1.f, 1.f)));
    dl.m.push_back(
        std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), 0.f, 1e-3f)));
    dl.v.push_back(
        std::make_unique<DeviceBuffer>(timing_tensor(rng, RELAT_F32, size_t(n), 0.f, 1e-3f)));
    dl.pp.push_back(dl.p.back()->get());
    dl.gp.push_back(dl.g.back()->get());
    dl.mp.push_back(static_cast<float *>(dl.m.back()->get()));
    dl.vp.push_back(static_cast<float *>(dl.v.back()->get()));
    dl.numel.push_back(n);
    total += n;
  }
  int64_t step = 0;
  const double us = timed_us("adamw", [&] {
    return relat_cuda_adamw_step(dl.pp.data(), dl.gp.data(), dl.mp.data(), dl.vp.data(),
                                 dl.numel.data(), int64_t(sizes.size()), RELAT_F32, RELAT_F32, 2e-5,
                                 0.9, 0.999, 1e-8, 0.0, ++step, nullptr);
  });
  // Bytes that must move: params read and written, grads read, both moments read and written.
  const double bytes = double(total) * (4 * 2 + 4 + 16);
  std::fprintf(csv, "adamw,f32,%zu,%lld,%.3f,%.0f,0\n", sizes.size(), (long long)total, us, bytes);
  std::printf("adamw f32 %zu tensors, %lld parameters: %.1f us\n", sizes.size(), (long long)total,
              us);
}

void check(Counter &c, Rng &rng, bool quick) {
  const std::vector<int64_t> awkward = {1, 0, 7, 3, 33, 129, 4095, 4096, 4097, 10001, 2, 257};
  const relat_dtype pg[][2] = {{RELAT_F32, RELAT_F32},
                               {RELAT_BF16, RELAT_BF16},
                               {RELAT_BF16, RELAT_F32},
                               {RELAT_F16, RELAT_F16}};
  for (const auto &p : pg) check_adamw(c, rng, p[0], p[1], awkward);
  if (!quick) {
    std::vector<int64_t> many;
    for (int i = 0; i < 600; ++i) many.push_back(rng.integer(0, 5000));
    check_adamw(c, rng, RELAT_F32, RELAT_F32, many);
    check_adamw(c, rng, RELAT_F32, RELAT_F32, lora_sizes(false));
  }
}

void bench(FILE *csv, Rng &rng) {
  bench_adamw(csv, rng, false);
  bench_adamw(csv, rng, true);
}

}  // namespace

RELAT_GPU_OP("adamw", check, bench);
