// GPU check driver (tests/gpu/run.sh): every CUDA kernel of librelat_cuda, run on the device,
// against its CPU twin in librelat_cpu on the host, on fresh random data with NaN-poisoned outputs;
// and CUDA-event timings of each kernel on shapes that fill the GPU.
//   check_kernels check [--quick]   correctness (--quick: small shapes, for compute-sanitizer)
//   check_kernels bench <out.csv>   median time per kernel, dtype and shape (CSV columns
//                                   kernel,dtype,rows,cols,us,bytes,flops; each row flushed)
// Each op is one file, checks/<op>.cpp, registering its check and bench (gpu_check.h); this file
// runs them all, in name order.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_check.h"

namespace relat::gpu_check {

namespace {
std::vector<Op> &ops() {
  static std::vector<Op> all;  // a function-local static: filled during static initialisation
  return all;
}
}  // namespace

bool register_op(const Op &op) {
  std::vector<Op> &all = ops();
  all.insert(
      std::upper_bound(all.begin(), all.end(), op,
                       [](const Op &a, const Op &b) { return std::strcmp(a.name, b.name) < 0; }),
      op);
  return true;
}

const std::vector<Op> &registered_ops() { return ops(); }

}  // namespace relat::gpu_check

using namespace relat::gpu_check;

int main(int argc, char **argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  std::setvbuf(stdout, nullptr, _IOLBF, 1 << 12);  // each result line as it is produced
  Rng rng(test_seed());
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
    for (const Op &op : registered_ops()) op.check(c, rng, quick);
    return c.finish();
  }
  if (mode == "bench" && argc > 2) {
    FILE *csv = std::fopen(argv[2], "w");
    if (!csv) return 2;
    // Every row reaches the file as it is written: a run cut short by its time limit keeps them.
    std::setvbuf(csv, nullptr, _IOLBF, 1 << 12);
    std::fprintf(csv, "kernel,dtype,rows,cols,us,bytes,flops\n");
    for (const Op &op : registered_ops()) op.bench(csv, rng);
    std::fclose(csv);
    return 0;
  }
  std::fprintf(stderr, "usage: %s check [--quick] | bench <out.csv>\n", argv[0]);
  return 2;
}
