// Shared pieces of the CUDA kernels: dtype conversion, block reductions, launch and error helpers.
// Everything here also compiles under the CUDA-on-CPU emulation used by the tests
// (tests/native/cuda_emu), which defines RELAT_CUDA_EMULATION and provides the CUDA runtime names
// used below. Kernels unroll loops with nvcc's plain `#pragma unroll`, which the emulated build
// (g++, -Wno-unknown-pragmas) ignores.
#pragma once

#ifndef RELAT_CUDA_EMULATION
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <string>

#include "relat/relat.h"

// Launch syntax that the emulation can replace: RELAT_LAUNCH(grid, block, smem, stream, kernel)(args).
#ifndef RELAT_LAUNCH
#define RELAT_LAUNCH(grid, block, smem, stream, ...) \
  __VA_ARGS__<<<(grid), (block), (smem), static_cast<cudaStream_t>(stream)>>>
#endif

namespace relat::cuda {

relat_status fail(relat_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Turns a pending launch error into a status with the op's name in the message.
relat_status check_launch(const char *op);

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

template <class T> __device__ __forceinline__ T from_f32(float f);
template <> __device__ __forceinline__ float from_f32<float>(float f) { return f; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float f) {
  return __float2bfloat16_rn(f);
}
template <> __device__ __forceinline__ __half from_f32<__half>(float f) { return __float2half_rn(f); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block; blockDim.x must be a multiple of 32. `scratch` is 32 floats of shared memory.
// Every thread gets the total. Ends with a barrier so scratch can be reused right away.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0.f;
    v = warp_sum(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}

// Lets `kernel` take `dynamic` bytes of dynamic shared memory. A kernel gets 48 KiB of shared
// memory in all, its static __shared__ arrays included, unless cudaFuncSetAttribute raises its
// dynamic limit, up to the device's opt-in maximum minus the static part; a launch above its limit
// fails.
template <class... P>
relat_status allow_dynamic_shared(void (*kernel)(P...), size_t dynamic, const char *op) {
  cudaFuncAttributes a;
  if (cudaFuncGetAttributes(&a, kernel) != cudaSuccess) return check_launch(op);
  if (dynamic <= size_t(a.maxDynamicSharedSizeBytes)) return RELAT_OK;
  int device = 0, optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess)
    return check_launch(op);
  if (a.sharedSizeBytes + dynamic > size_t(optin))
    return fail(RELAT_ERR_UNSUPPORTED,
                "%s: needs %zu bytes of shared memory per block (%zu static + %zu dynamic); this "
                "device allows %d",
                op, a.sharedSizeBytes + dynamic, a.sharedSizeBytes, dynamic, optin);
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(dynamic)) !=
      cudaSuccess)
    return check_launch(op);
  return RELAT_OK;
}

// Runs one op on the device of its stream: makes that device current for the guard's lifetime and
// then restores the caller's. Without it a stream of device 1 used while device 0 is current would
// be launched into the wrong context (cudaErrorInvalidResourceHandle, or worse, device 0 memory
// assumptions such as the SM count). A NULL stream is the current device's: nothing to switch.
class DeviceGuard {
 public:
  DeviceGuard(relat_stream stream, const char *op);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard &) = delete;
  DeviceGuard &operator=(const DeviceGuard &) = delete;
  relat_status status() const { return status_; }

 private:
  int restore_ = -1;  // the caller's device, when it differs from the stream's
  relat_status status_ = RELAT_OK;
};

// First statement of every op that launches: the guard for `stream`, or the op's error status.
#define RELAT_ON_STREAM_DEVICE(op, stream)                        \
  ::relat::cuda::DeviceGuard relat_device_guard_((stream), (op)); \
  if (relat_device_guard_.status() != RELAT_OK) return relat_device_guard_.status()

// Calls fn(type_tag<T>{}) with the CUDA storage type named by the dtype tag.
template <class T> struct type_tag { using type = T; };

template <class Fn> relat_status dispatch_dtype(relat_dtype dtype, const char *op, Fn &&fn) {
  switch (dtype) {
    case RELAT_F32: return fn(type_tag<float>{});
    case RELAT_BF16: return fn(type_tag<__nv_bfloat16>{});
    case RELAT_F16: return fn(type_tag<__half>{});
  }
  return fail(RELAT_ERR_INVALID_ARGUMENT, "%s: unknown dtype tag %d", op, int(dtype));
}

// Threads per block for row-wise kernels: enough warps to cover the row, at most 1024.
inline int row_block_size(int64_t cols, int per_thread = 4) {
  int64_t warps = (cols + 32 * per_thread - 1) / (32 * per_thread);
  if (warps < 1) warps = 1;
  if (warps > 32) warps = 32;
  return int(warps * 32);
}

}  // namespace relat::cuda
