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

DeviceGuard::DeviceGuard(relat_stream stream, const char *op) {
  if (!stream) return;
  int wanted = 0, current = 0;
  cudaError_t e = cudaStreamGetDevice(static_cast<cudaStream_t>(stream), &wanted);
  if (e == cudaSuccess) e = cudaGetDevice(&current);
  if (e == cudaSuccess && wanted != current) {
    e = cudaSetDevice(wanted);
    if (e == cudaSuccess) restore_ = current;
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    status_ = fail(RELAT_ERR_DEVICE,
                   "%s: cannot make the stream's device current: CUDA error %d (%s): %s", op,
                   int(e), cudaGetErrorName(e), cudaGetErrorString(e));
  }
}

DeviceGuard::~DeviceGuard() {
  if (restore_ >= 0) cudaSetDevice(restore_);
}

}  // namespace relat::cuda

extern "C" const char *relat_cuda_last_error(void) { return relat::cuda::last_error.c_str(); }
extern "C" const char *relat_cuda_version(void) { return RELAT_VERSION; }
extern "C" const char *relat_cuda_architectures(void) { return RELAT_CUDA_ARCHITECTURES; }
extern "C" relat_status relat_cuda_set_device(int device) {
  using relat::cuda::fail;
  const int count = relat_cuda_device_count();
  if (device < 0 || device >= count)
    return fail(RELAT_ERR_INVALID_ARGUMENT, "set_device: device %d does not exist (%d visible)",
                device, count);
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    cudaGetLastError();
    return fail(RELAT_ERR_DEVICE, "set_device: CUDA error %d (%s): %s", int(e), cudaGetErrorName(e),
                cudaGetErrorString(e));
  }
  return RELAT_OK;
}

extern "C" int relat_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}
