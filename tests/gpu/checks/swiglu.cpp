// SwiGLU forward and backward (kernels/swiglu.cu) against the CPU twin (native/src/swiglu.cpp), and
// their timings.
#include <cuda_runtime.h>

#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

// The fused [gate | up] layout, ld = 2*cols.
void check_swiglu(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t cols) {
  const size_t n = size_t(rows * cols), es = dtype_size(d);
  const Tensor gu = random_tensor(rng, d, 2 * n, -6.f, 6.f),
               g = random_tensor(rng, d, n, -1.f, 1.f);
  Tensor out(d, n), want(d, n), dgu(d, 2 * n), want_dgu(d, 2 * n);
  poison(out);
  poison(dgu);
  DeviceBuffer bgu(gu), bg(g), bout(out), bdgu(dgu);
  char *dgu_dev = static_cast<char *>(bgu.get());
  char *ddgu = static_cast<char *>(bdgu.get());
  const relat_status s1 = relat_cuda_swiglu_forward(dgu_dev, dgu_dev + cols * es, 2 * cols,
                                                    bout.get(), rows, cols, d, nullptr);
  const relat_status s2 =
      relat_cuda_swiglu_backward(bg.get(), dgu_dev, dgu_dev + cols * es, 2 * cols, ddgu,
                                 ddgu + cols * es, 2 * cols, rows, cols, d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  const char *hgu = static_cast<const char *>(gu.data());
  char *hdgu = static_cast<char *>(want_dgu.data());
  relat_cpu_swiglu_forward(hgu, hgu + cols * es, 2 * cols, want.data(), rows, cols, d, nullptr);
  relat_cpu_swiglu_backward(g.data(), hgu, hgu + cols * es, 2 * cols, hdgu, hdgu + cols * es,
                            2 * cols, rows, cols, d, nullptr);
  char what[96];
  std::snprintf(what, sizeof what, "swiglu %s rows=%lld cols=%lld", dtype_name(d), (long long)rows,
                (long long)cols);
  if (!c.check(s1 == RELAT_OK && s2 == RELAT_OK && sync == cudaSuccess,
               "%s: status %d/%d (%s), sync %s", what, s1, s2, relat_cuda_last_error(),
               cudaGetErrorName(sync)))
    return;
  bout.download(out);
  bdgu.download(dgu);
  const Comparison co = compare(out, want, tolerance(d)), cg = compare(dgu, want_dgu, tolerance(d));
  c.check(co.ok, "%s: out %s", what, co.describe().c_str());
  c.check(cg.ok, "%s: dgate|dup %s", what, cg.describe().c_str());
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

void check(Counter &c, Rng &rng, bool quick) {
  // The shapes of rmsnorm's backward check: awkward ones, 128 columns, a wide row.
  std::vector<Shape> shapes = {{1, 1},    {1, 7},    {4, 33},    {5, 100},  {2, 129},
                               {7, 1000}, {2, 4097}, {300, 128}, {2, 12288}};
  if (!quick) shapes.insert(shapes.end(), {{1024, 4096}, {16384, 128}, {512, 12288}});
  for (relat_dtype d : kDtypes)
    for (const Shape &s : shapes) check_swiglu(c, rng, d, s.rows, s.cols);
}

void bench(FILE *csv, Rng &rng) {
  // The Qwen3-0.6B / 8B intermediate widths.
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) {
    bench_swiglu(csv, rng, d, 16384, 3072);
    bench_swiglu(csv, rng, d, 4096, 12288);
  }
}

}  // namespace

RELAT_GPU_OP("swiglu", check, bench);
