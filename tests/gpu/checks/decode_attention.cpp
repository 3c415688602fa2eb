// Decode attention over a KV cache (kernels/decode_attention.cu) against the CPU twin
// (native/src/decode_attention.cpp), and its timings.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

void check_decode(Counter &c, Rng &rng, relat_dtype d, int64_t len, int64_t hq, int64_t hkv,
                  int64_t dim) {
  const int64_t capacity = len + 17, stride = hkv * dim;
  const size_t ncache = size_t(capacity * stride), nq = size_t(hq * dim);
  const Tensor kc = random_tensor(rng, d, ncache, -2.f, 2.f),
               vc = random_tensor(rng, d, ncache, -2.f, 2.f),
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
                                     hq, hkv, dim, stride, 0, scale,
                                     static_cast<float *>(ws.data()), ws_bytes, d, nullptr);
  char what[128];
  std::snprintf(what, sizeof what, "decode %s len=%lld hq=%lld hkv=%lld D=%lld", dtype_name(d),
                (long long)len, (long long)hq, (long long)hkv, (long long)dim);
  if (!device_ok(c, what, st, sync)) return;
  dout.download(out);
  const Comparison co = compare(out, want, scaled_tolerance(d, want));
  c.check(co.ok, "%s: out %s", what, co.describe().c_str());
}

void bench_decode(FILE *csv, Rng &rng, relat_dtype d, int64_t len) {
  const int64_t hq = 16, hkv = 8, dim = 128, stride = hkv * dim;
  const size_t ncache = size_t(len * stride), nq = size_t(hq * dim), es = dtype_size(d);
  DeviceBuffer kc(timing_tensor(rng, d, ncache, -2.f, 2.f)),
      vc(timing_tensor(rng, d, ncache, -2.f, 2.f)), q(timing_tensor(rng, d, nq, -2.f, 2.f)),
      out(nq * es);
  int64_t ws_bytes = 0;
  relat_cuda_decode_attention_workspace_bytes(1, hq, dim, len, &ws_bytes);
  DeviceBuffer ws{size_t(ws_bytes)};
  const double us = timed_us("decode", [&] {
    return relat_cuda_decode_attention_forward(
        q.get(), kc.get(), vc.get(), out.get(), nullptr, 1, len, hq, hkv, dim, stride, 0,
        1.f / std::sqrt(float(dim)), static_cast<float *>(ws.get()), ws_bytes, d, nullptr);
  });
  const double bytes = 2.0 * double(ncache) * es + 2.0 * double(nq) * es;
  std::fprintf(csv, "decode_attention,%s,1,%lld,%.3f,%.0f,0\n", dtype_name(d), (long long)len, us,
               bytes);
  std::printf("decode %s len=%lld: %.1f us\n", dtype_name(d), (long long)len, us);
}

void check(Counter &c, Rng &rng, bool quick) {
  std::vector<int64_t> lens = {1, 1000};
  if (!quick) lens.push_back(32768);
  for (relat_dtype d : kDtypes)
    for (int64_t len : lens) {
      check_decode(c, rng, d, len, 16, 8, 128);
      check_decode(c, rng, d, len, 8, 1, 64);
    }
}

void bench(FILE *csv, Rng &rng) {
  for (relat_dtype d : kDtypes) {
    bench_decode(csv, rng, d, 4096);
    bench_decode(csv, rng, d, 32768);
  }
}

}  // namespace

RELAT_GPU_OP("decode_attention", check, bench);
