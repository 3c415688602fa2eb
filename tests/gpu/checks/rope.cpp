// RoPE forward and backward (kernels/rope.cu) against the CPU twin (native/src/rope.cpp), and the
// forward's timings.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

std::vector<float> rope_inv_freq(int64_t head_dim) {
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i) f[i] = 1.f / std::pow(1e6f, float(2 * i) / float(head_dim));
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
  const relat_status s =
      fn(dq.get(), kvh ? dk.get() : nullptr, dqo.get(), kvh ? dko.get() : nullptr,
         static_cast<const int64_t *>(dpos.get()), static_cast<const float *>(dfreq.get()), tokens,
         qh, kvh, head_dim, qh * head_dim, kvh * head_dim, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  cpu(q.data(), kvh ? k.data() : nullptr, want_q.data(), kvh ? want_k.data() : nullptr, pos.data(),
      freq.data(), tokens, qh, kvh, head_dim, qh * head_dim, kvh * head_dim, d, nullptr);
  char what[128];
  std::snprintf(what, sizeof what, "rope %s %s tokens=%lld heads=%lld/%lld D=%lld",
                backward ? "backward" : "forward", dtype_name(d), (long long)tokens, (long long)qh,
                (long long)kvh, (long long)head_dim);
  if (!device_ok(c, what, s, sync)) return;
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
  DeviceBuffer dqo(nq * es), dko(nk * es), dpos(size_t(tokens) * 8),
      dfreq(size_t(head_dim / 2) * 4);
  std::vector<int64_t> pos(static_cast<size_t>(tokens));
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int64_t(i) + 37;
  const std::vector<float> freq = rope_inv_freq(head_dim);
  dpos.upload_raw(pos.data(), pos.size() * 8);
  dfreq.upload_raw(freq.data(), freq.size() * 4);
  const double us = timed_us("rope", [&] {
    return relat_cuda_rope_forward(dq.get(), dk.get(), dqo.get(), dko.get(),
                                   static_cast<const int64_t *>(dpos.get()),
                                   static_cast<const float *>(dfreq.get()), tokens, qh, kvh,
                                   head_dim, qh * head_dim, kvh * head_dim, d, nullptr);
  });
  // Bytes that must move: read q and k, write them, read the positions.
  const double bytes = double(nq + nk) * es * 2 + double(tokens) * 8;
  std::fprintf(csv, "rope_forward,%s,%lld,%lld,%.3f,%.0f,0\n", dtype_name(d), (long long)tokens,
               (long long)qh, us, bytes);
  std::printf("rope_forward %s tokens=%lld q_heads=%lld: %.1f us\n", dtype_name(d),
              (long long)tokens, (long long)qh, us);
}

void check(Counter &c, Rng &rng, bool quick) {
  const int64_t rope_shapes[][4] = {{1, 1, 1, 2},    {3, 5, 1, 6},     {7, 4, 2, 66}, {5, 2, 0, 10},
                                    {1, 16, 8, 128}, {33, 32, 8, 128}, {9, 7, 3, 254}};
  for (relat_dtype d : kDtypes)
    for (const auto &r : rope_shapes)
      for (bool backward : {false, true}) check_rope(c, rng, d, r[0], r[1], r[2], r[3], backward);
  if (!quick)
    for (relat_dtype d : kDtypes) check_rope(c, rng, d, 512, 32, 8, 128, false);
}

void bench(FILE *csv, Rng &rng) {
  // Qwen3-0.6B / -8B head counts (16 / 32 query heads, 8 KV heads, head_dim 128).
  for (relat_dtype d : {RELAT_F32, RELAT_BF16})
    for (int64_t tokens : {1, 512, 8192})
      for (int64_t qh : {16, 32}) bench_rope(csv, rng, d, tokens, qh);
}

}  // namespace

RELAT_GPU_OP("rope", check, bench);
