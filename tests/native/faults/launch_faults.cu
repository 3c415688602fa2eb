// Kernels for launch_limits_test.cpp: each launch below breaks one limit the hardware enforces at
// launch (or stays just inside it, as the control). Compiled by nvcc into the emulation's resource
// table like the library's kernels, so their launch bounds, static shared memory and registers are
// nvcc's own.
#include "../../../kernels/cuda_common.cuh"
#include "launch_faults.h"

namespace relat::cuda::launch_faults {

constexpr int kBound = 256;
constexpr int kStaticWords = 2048;  // 8 KiB of static shared memory
constexpr int kHeavy = 96;          // accumulators live across the loop: ~100 registers

__global__ void __launch_bounds__(kBound) bounded_kernel(float *out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1.f;
}

__global__ void plain_kernel(float *out) {
  const unsigned t = threadIdx.x + blockDim.x * threadIdx.y;
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && t == 0) out[0] = 1.f;
}

__global__ void static_shared_kernel(float *out, int dynamic_words) {
  __shared__ float fixed[kStaticWords];
  extern __shared__ float dynamic[];
  for (int i = threadIdx.x; i < kStaticWords; i += blockDim.x) fixed[i] = float(i);
  for (int i = threadIdx.x; i < dynamic_words; i += blockDim.x) dynamic[i] = 1.f;
  __syncthreads();
  if (threadIdx.x == 0)
    out[blockIdx.x] = fixed[kStaticWords - 1] + (dynamic_words ? dynamic[0] : 0.f);
}

__global__ void register_heavy_kernel(const float *x, float *out, int n) {
  float acc[kHeavy];
#pragma unroll
  for (int i = 0; i < kHeavy; ++i) acc[i] = 0.f;
  for (int k = threadIdx.x; k < n; k += blockDim.x) {
    const float v = x[k];
#pragma unroll
    for (int i = 0; i < kHeavy; ++i) acc[i] = fmaf(acc[i], v, float(i));
  }
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kHeavy; ++i) s = fmaf(acc[i], acc[i], s);
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

}  // namespace relat::cuda::launch_faults

using namespace relat::cuda::launch_faults;

extern "C" int relat_launch_fault(relat_launch_case which, float *out) {
  cudaGetLastError();
  switch (which) {
    case LAUNCH_BOUND_OK: RELAT_LAUNCH(2, kBound, 0, nullptr, bounded_kernel)(out); break;
    case LAUNCH_BOUND_EXCEEDED: RELAT_LAUNCH(1, 2 * kBound, 0, nullptr, bounded_kernel)(out); break;
    case LAUNCH_BLOCK_1024: RELAT_LAUNCH(1, dim3(32, 32), 0, nullptr, plain_kernel)(out); break;
    case LAUNCH_BLOCK_OVER_1024:
      RELAT_LAUNCH(1, dim3(32, 33), 0, nullptr, plain_kernel)(out);
      break;
    case LAUNCH_GRID_Y_OK: RELAT_LAUNCH(dim3(1, 65535), 32, 0, nullptr, plain_kernel)(out); break;
    case LAUNCH_GRID_Y_OVER: RELAT_LAUNCH(dim3(1, 65536), 32, 0, nullptr, plain_kernel)(out); break;
    case LAUNCH_GRID_X_OVER:
      RELAT_LAUNCH(dim3(0x80000000u), 32, 0, nullptr, plain_kernel)(out);
      break;
    case LAUNCH_SHARED_48K: {  // static + dynamic = 48 KiB exactly: allowed without the opt-in
      const int words = 12 * 1024 - kStaticWords;
      RELAT_LAUNCH(2, 128, words * 4, nullptr, static_shared_kernel)(out, words);
      break;
    }
    case LAUNCH_SHARED_OVER_48K: {  // one word more, no opt-in: the soft backward's old bug
      const int words = 12 * 1024 - kStaticWords + 1;
      RELAT_LAUNCH(2, 128, words * 4, nullptr, static_shared_kernel)(out, words);
      break;
    }
    case LAUNCH_SHARED_OPTED_IN: {  // the same after raising the kernel's dynamic limit
      const int words = 12 * 1024 - kStaticWords + 1;
      if (cudaError_t e = cudaFuncSetAttribute(
              static_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, words * 4))
        return int(e);
      RELAT_LAUNCH(2, 128, words * 4, nullptr, static_shared_kernel)(out, words);
      break;
    }
    case LAUNCH_SHARED_OPTIN_OVER_SM80: {  // above sm_80's 163 KiB: the opt-in is refused
      const int bytes = 166912 - kStaticWords * 4 + 4;
      return int(cudaFuncSetAttribute(static_shared_kernel,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    }
    case LAUNCH_REGISTERS_OVER:
      RELAT_LAUNCH(1, 1024, 0, nullptr, register_heavy_kernel)(out, out, 1);
      break;
    case LAUNCH_REGISTERS_OK:
      RELAT_LAUNCH(1, 256, 0, nullptr, register_heavy_kernel)(out, out, 1);
      break;
  }
  return int(cudaGetLastError());
}

extern "C" int relat_launch_fault_attributes(relat_launch_case which, int *max_threads,
                                             int *static_shared, int *registers) {
  cudaFuncAttributes a;
  cudaError_t e = cudaErrorInvalidValue;
  if (which == LAUNCH_BOUND_OK) e = cudaFuncGetAttributes(&a, bounded_kernel);
  if (which == LAUNCH_SHARED_48K) e = cudaFuncGetAttributes(&a, static_shared_kernel);
  if (which == LAUNCH_REGISTERS_OK) e = cudaFuncGetAttributes(&a, register_heavy_kernel);
  if (e == cudaSuccess) {
    *max_threads = a.maxThreadsPerBlock;
    *static_shared = int(a.sharedSizeBytes);
    *registers = a.numRegs;
  }
  return int(e);
}
