// The profiling markers of relat.h on the CUDA library: NVTX3 ranges and the CUDA profiler API.
// Host code only (no kernel), so no CPU twin beyond the no-ops of native/src/profile.cpp, and not
// compiled under the CUDA-on-CPU emulation (which has neither NVTX nor the profiler API): see
// RELAT_CUDA_HOST_SOURCES in cmake/RelatSources.cmake.
//
// NVTX3 is header-only: nvtxRangePushA is a call through a function pointer that stays a no-op
// until a tool (nsys, ncu) sets the NVTX_INJECTION64_PATH environment variable; the first call
// then loads the tool's injection library with dlopen.
#include <cuda_profiler_api.h>
#include <nvtx3/nvToolsExt.h>

#include "cuda_common.cuh"

extern "C" relat_status relat_cuda_profile_range_push(const char *name) {
  if (name == nullptr) return relat::cuda::fail(RELAT_ERR_INVALID_ARGUMENT, "profile_range_push: name is NULL");
  nvtxRangePushA(name);  // the nesting depth it returns is negative when no tool listens: not an error
  return RELAT_OK;
}

extern "C" relat_status relat_cuda_profile_range_pop(void) {
  nvtxRangePop();
  return RELAT_OK;
}

namespace {
relat_status profiler_status(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return RELAT_OK;
  cudaGetLastError();  // do not leave a sticky error for the next kernel's launch check
  return relat::cuda::fail(RELAT_ERR_DEVICE, "%s: CUDA error %d (%s): %s", what, int(e), cudaGetErrorName(e),
                           cudaGetErrorString(e));
}
}  // namespace

extern "C" relat_status relat_cuda_profile_start(void) {
  return profiler_status(cudaProfilerStart(), "profile_start (cudaProfilerStart)");
}

extern "C" relat_status relat_cuda_profile_stop(void) {
  return profiler_status(cudaProfilerStop(), "profile_stop (cudaProfilerStop)");
}
