// Few-row linear, forward and backward (kernels/gemv.cu) against the CPU twin
// (native/src/gemv.cpp), and their timings at one row (decode) on Qwen3 projection shapes.
#include <cuda_runtime.h>

#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

struct Gemv {
  int64_t rows, n, k;
};

void check_gemv(Counter &c, Rng &rng, relat_dtype d, Gemv s, bool backward) {
  const int64_t in = backward ? s.n : s.k, out = backward ? s.k : s.n;
  const Tensor x = random_tensor(rng, d, size_t(s.rows * in), -1.f, 1.f),
               w = random_tensor(rng, d, size_t(s.n * s.k), -1.f, 1.f);
  Tensor y(d, size_t(s.rows * out)), want(d, size_t(s.rows * out));
  poison(y);
  DeviceBuffer bx(x), bw(w), by(y);
  const relat_status st =
      backward
          ? relat_cuda_gemv_backward(bx.get(), bw.get(), by.get(), s.rows, s.n, s.k, d, nullptr)
          : relat_cuda_gemv_forward(bx.get(), bw.get(), by.get(), s.rows, s.n, s.k, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  if (backward)
    relat_cpu_gemv_backward(x.data(), w.data(), want.data(), s.rows, s.n, s.k, d, nullptr);
  else
    relat_cpu_gemv_forward(x.data(), w.data(), want.data(), s.rows, s.n, s.k, d, nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "gemv_%s %s rows=%lld n=%lld k=%lld",
                backward ? "backward" : "forward", dtype_name(d), (long long)s.rows, (long long)s.n,
                (long long)s.k);
  if (!c.check(st == RELAT_OK && sync == cudaSuccess, "%s: status %d (%s), sync %s", what, st,
               relat_cuda_last_error(), cudaGetErrorName(sync)))
    return;
  by.download(y);
  // Both twins accumulate in fp32 in different orders: a dot product of k terms in [-1, 1] differs
  // by a few ulps of its terms' scale, so the comparison is absolute at sqrt(k)-ish magnitudes.
  Tolerance tol = tolerance(d);
  tol.atol = tol.rtol * double(in);
  const Comparison cmp = compare(y, want, tol);
  c.check(cmp.ok, "%s: y %s", what, cmp.describe().c_str());
}

void bench_gemv(FILE *csv, Rng &rng, relat_dtype d, int64_t n, int64_t k) {
  const size_t es = dtype_size(d);
  DeviceBuffer w(timing_tensor(rng, d, size_t(n * k), -1.f, 1.f));
  DeviceBuffer x(timing_tensor(rng, d, size_t(std::max(n, k)), -1.f, 1.f));
  DeviceBuffer y(size_t(std::max(n, k)) * es);
  const double bytes = double(n) * double(k) * double(es) + double(n + k) * double(es);
  bench_one(csv, "gemv_forward", d, n, k, bytes, [&] {
    return relat_cuda_gemv_forward(x.get(), w.get(), y.get(), 1, n, k, d, nullptr);
  });
  bench_one(csv, "gemv_backward", d, n, k, bytes, [&] {
    return relat_cuda_gemv_backward(x.get(), w.get(), y.get(), 1, n, k, d, nullptr);
  });
}

void check(Counter &c, Rng &rng, bool quick) {
  std::vector<Gemv> shapes = {
      {1, 1, 1}, {3, 7, 33}, {8, 257, 130}, {1, 4096, 1024}, {2, 1024, 3072}};
  if (!quick) shapes.insert(shapes.end(), {{1, 151936, 1024}, {8, 6144, 4096}, {1, 4096, 12288}});
  for (relat_dtype d : kDtypes)
    for (const Gemv &s : shapes)
      for (bool backward : {false, true}) check_gemv(c, rng, d, s, backward);
}

void bench(FILE *csv, Rng &rng) {
  // Qwen3-0.6B q|k|v, down and LM head; Qwen3-8B q|k|v and down (bf16 as served, f32 as tested).
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) {
    bench_gemv(csv, rng, d, 4096, 1024);
    bench_gemv(csv, rng, d, 1024, 3072);
    bench_gemv(csv, rng, d, 151936, 1024);
    bench_gemv(csv, rng, d, 6144, 4096);
    bench_gemv(csv, rng, d, 4096, 12288);
  }
}

}  // namespace

RELAT_GPU_OP("gemv", check, bench);
