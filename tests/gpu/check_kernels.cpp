// GPU check driver (tests/gpu/run.sh): every CUDA kernel of librelat_cuda, run on the device,
// against its CPU twin in librelat_cpu on the host, on fresh random data with NaN-poisoned outputs;
// and CUDA-event timings of each kernel on shapes that fill the GPU.
//   check_kernels check [--quick]   correctness (--quick: small shapes, for compute-sanitizer)
//   check_kernels bench <out.csv>   median time per kernel, dtype and shape
// Adding a kernel: a check_<op> and a bench_<op> below, called from main, and the same op in
// bench_torch.py.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

struct Shape {
  int64_t rows, cols;
};

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
    std::fclose(csv);
    return 0;
  }
  std::fprintf(stderr, "usage: %s check [--quick] | bench <out.csv>\n", argv[0]);
  return 2;
}
