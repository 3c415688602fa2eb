#include <cstdarg>
#include <cstdio>

#include "cuda_common.cuh"

namespace relat::cuda {
namespace {
thread_local std::string last_error;
}

relat_status fail(relat_status code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  last_error = buf;
  return code;
}

relat_status check_launch(const char *op) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return RELAT_OK;
  return fail(RELAT_ERR_DEVICE, "%s: CUDA error %d (%s): %s", op, int(e), cudaGetErrorName(e),
              cudaGetErrorString(e));
}

}  // namespace relat::cuda

extern "C" const char *relat_cuda_last_error(void) { return relat::cuda::last_error.c_str(); }
extern "C" const char *relat_cuda_version(void) { return RELAT_VERSION; }
extern "C" const char *relat_cuda_architectures(void) { return RELAT_CUDA_ARCHITECTURES; }
extern "C" int relat_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}
