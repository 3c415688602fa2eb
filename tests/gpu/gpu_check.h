// What the per-op files of tests/gpu/checks share: the registry check_kernels runs, device buffers
// and the timing helpers. Host C++ against librelat_cuda, librelat_cpu and the CUDA runtime.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "test_util.h"

namespace relat::gpu_check {

using namespace relat::test;

// One op's entry: `check` compares the device with the CPU twin (quick: the small shapes only, for
// compute-sanitizer); `bench` times the device and writes one CSV row per case.
struct Op {
  const char *name;
  void (*check)(Counter &c, Rng &rng, bool quick);
  void (*bench)(FILE *csv, Rng &rng);
};

// Adds an op; called once per checks/<op>.cpp, at static initialisation (RELAT_GPU_OP).
bool register_op(const Op &op);
// Every registered op, in name order, so runs do not depend on link order.
const std::vector<Op> &registered_ops();

#define RELAT_GPU_OP(name, check, bench)                       \
  [[maybe_unused]] static const bool relat_gpu_op_registered = \
      ::relat::gpu_check::register_op({name, check, bench})

inline constexpr relat_dtype kDtypes[] = {RELAT_F32, RELAT_BF16, RELAT_F16};
inline constexpr int64_t kQwenVocab = 151936;

struct Shape {
  int64_t rows, cols;
};

inline void cuda_ok(cudaError_t e, const char *what) {
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

// Records whether a device call and the synchronisation after it succeeded (false: nothing to
// compare). `stage` follows `what` in the message, e.g. " forward".
inline bool device_ok(Counter &c, const char *what, relat_status s, cudaError_t sync,
                      const char *stage = "") {
  return c.check(s == RELAT_OK && sync == cudaSuccess, "%s%s: status %d (%s), sync %s", what, stage,
                 s, relat_cuda_last_error(), cudaGetErrorName(sync));
}

// Errors measured against the tensor's largest magnitude: device and host sum in different
// orders, so elements near zero differ by ~1 ulp of the max.
inline Tolerance scaled_tolerance(relat_dtype d, const Tensor &want) {
  float mx = 0.f;
  for (size_t i = 0; i < want.n; ++i) mx = std::max(mx, std::fabs(want.at(i)));
  const Tolerance t = tolerance(d);
  return {t.rtol, t.rtol * mx + t.atol};
}

// Outputs of the fused vocabulary kernels are compared as max |got - want| / max |want|: the
// kernels feed their second GEMM with probabilities rounded to the storage type, the CPU twins
// keep them in fp32.
inline double relative_bound(relat_dtype d) {
  return d == RELAT_F32 ? 1e-5 : d == RELAT_BF16 ? 1e-2 : 1e-3;
}

inline bool close_relative(const Tensor &got, const Tensor &want, double bound, double *err) {
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

// Median of `iters` individually timed launches after a warm-up, in microseconds.
template <class Launch>
double median_us(Launch launch, int warmup = 10, int iters = 100) {
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

// median_us of a launch returning a status; a failed launch ends the run ("<what> bench failed").
template <class Launch>
double timed_us(const char *what, Launch launch, int warmup = 10, int iters = 100) {
  relat_status status = RELAT_OK;
  const double us = median_us(
      [&] {
        const relat_status s = launch();
        if (s != RELAT_OK) status = s;
      },
      warmup, iters);
  if (status != RELAT_OK) {
    std::fprintf(stderr, "%s bench failed: %s\n", what, relat_cuda_last_error());
    std::exit(1);
  }
  return us;
}

// Times `launch` and writes its CSV row (kernel,dtype,rows,cols,us,bytes,flops; flops 0: a
// bandwidth-bound kernel) and a line to stdout. check_kernels makes the CSV line-buffered, so a
// timeout loses no finished row.
template <class Launch>
void bench_one(FILE *csv, const char *kernel, relat_dtype d, int64_t rows, int64_t cols,
               double bytes, Launch launch) {
  const double us = timed_us(kernel, launch);
  std::fprintf(csv, "%s,%s,%lld,%lld,%.3f,%.0f,0\n", kernel, dtype_name(d), (long long)rows,
               (long long)cols, us, bytes);
  std::printf("%s %s %lldx%lld: %.1f us\n", kernel, dtype_name(d), (long long)rows, (long long)cols,
              us);
}

// Inputs for timing: a random block repeated (the values do not change the work).
inline Tensor timing_tensor(Rng &rng, relat_dtype d, size_t n, float lo, float hi) {
  const size_t block = std::min<size_t>(n, 1 << 16);
  const Tensor pattern = random_tensor(rng, d, block, lo, hi);
  Tensor t(d, n);
  const size_t es = dtype_size(d);
  for (size_t i = 0; i < n; i += block)
    std::memcpy(static_cast<char *>(t.data()) + i * es, pattern.data(),
                std::min(block, n - i) * es);
  return t;
}

}  // namespace relat::gpu_check
