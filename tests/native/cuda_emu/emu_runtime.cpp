// Runtime API of the CUDA emulation: error state (per-thread last error, sticky kernel faults),
// host-memory "device" allocations and copies, device queries and kernel attributes. Launches are
// synchronous, so streams and synchronisation only report the error state.
#include <atomic>
#include <cstdarg>
#include <mutex>
#include <unordered_map>

#include "emu_internal.h"
#include "emu_resources.h"

namespace relat_emu::detail {
namespace {

thread_local cudaError_t tl_last_error = cudaSuccess;
std::atomic<int> g_sticky{cudaSuccess};
std::mutex g_mutex;  // guards the two below
std::string g_fault;
std::unordered_map<const void *, size_t> g_dynamic_shared_limits;

struct ErrorText {
  cudaError_t code;
  const char *name, *text;
};
constexpr ErrorText kErrors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
     "invalid configuration argument"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources",
     "too many resources requested for launch"},
    {cudaErrorAssert, "cudaErrorAssert", "device-side assert triggered"},
    {cudaErrorIllegalInstruction, "cudaErrorIllegalInstruction",
     "an illegal instruction was encountered"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
};

const ErrorText *find_error(cudaError_t e) {
  for (const ErrorText &t : kErrors)
    if (t.code == e) return &t;
  return nullptr;
}

// Every API call fails with the sticky error once a kernel faulted; errors also become the last
// error.
cudaError_t result(cudaError_t e) {
  if (e != cudaSuccess) tl_last_error = e;
  return e;
}
cudaError_t sticky() { return cudaError_t(g_sticky.load()); }

}  // namespace

std::string format(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string s(size_t(n > 0 ? n : 0), '\0');
  std::vsnprintf(s.data(), s.size() + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

void set_last_error(cudaError_t e) { tl_last_error = e; }
cudaError_t sticky_error() { return sticky(); }

void raise_fault(const std::string &message) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_fault = message;
  }
  g_sticky = cudaErrorLaunchFailure;
  tl_last_error = cudaErrorLaunchFailure;
  std::fprintf(stderr, "relat-cuda-emu: kernel fault: %s\n", message.c_str());
}

size_t dynamic_shared_limit(const void *func) {
  const size_t static_shared = kernel_limits(func).static_shared;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_dynamic_shared_limits.find(func);
  if (it != g_dynamic_shared_limits.end()) return it->second;
  // As on the hardware: without the opt-in, static + dynamic shared memory fit in 48 KiB.
  return kDefaultMaxShared > static_shared ? kDefaultMaxShared - static_shared : 0;
}

cudaError_t func_set_attribute(const void *func, cudaFuncAttribute attr, int value) {
  if (cudaError_t e = sticky()) return result(e);
  if (!func) return result(cudaErrorInvalidDeviceFunction);
  const KernelLimits limits = kernel_limits(func);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      limits.static_shared + size_t(value) > shared_optin_limit()) {
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize && value >= 0)
      std::fprintf(stderr,
                   "relat-cuda-emu: cudaFuncSetAttribute(%s, MaxDynamicSharedMemorySize, %d): "
                   "%zu bytes of static shared memory + %d exceed the %zu bytes a block may opt "
                   "in to on sm_%d -> cudaErrorInvalidValue\n",
                   limits.symbol.c_str(), value, limits.static_shared, value, shared_optin_limit(),
                   device_arch() ? device_arch() : 80);
    return result(cudaErrorInvalidValue);
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  g_dynamic_shared_limits[func] = size_t(value);
  return cudaSuccess;
}

cudaError_t func_get_attributes(cudaFuncAttributes *attr, const void *func) {
  if (cudaError_t e = sticky()) return result(e);
  if (!attr) return result(cudaErrorInvalidValue);
  if (!func) return result(cudaErrorInvalidDeviceFunction);
  const KernelLimits limits = kernel_limits(func);
  attr->sharedSizeBytes = limits.static_shared;
  attr->maxThreadsPerBlock = int(limits.at(device_arch()).max_threads);
  attr->numRegs = limits.at(device_arch()).registers;
  attr->maxDynamicSharedSizeBytes = int(dynamic_shared_limit(func));
  return cudaSuccess;
}

namespace {
std::atomic<int> g_device_arch{0};
}
int device_arch() { return g_device_arch.load(); }
size_t shared_optin_limit() { return device_arch() == 90 ? kMaxSharedOptinSm90 : kMaxSharedOptin; }
int sm_count() { return device_arch() == 90 ? 132 : kEmulatedSmCount; }

int tls_anchor() { return 0; }

}  // namespace relat_emu::detail

void relat_emu::set_device_count(int n) { relat_emu::detail::g_device_count = n < 1 ? 1 : n; }

void relat_emu::set_device_arch(int arch) {
  detail::g_device_arch = arch == 80 || arch == 90 ? arch : 0;
  std::lock_guard<std::mutex> lock(detail::g_mutex);
  detail::g_dynamic_shared_limits.clear();  // another device: attributes are set again
}

std::string relat_emu::last_fault() {
  std::lock_guard<std::mutex> lock(detail::g_mutex);
  return detail::g_fault;
}

using relat_emu::detail::result;
using relat_emu::detail::sticky;
using relat_emu::detail::tl_last_error;

cudaError_t cudaGetLastError() {
  const cudaError_t e = tl_last_error;
  tl_last_error = sticky();
  return e != cudaSuccess ? e : sticky();
}

cudaError_t cudaPeekAtLastError() {
  return tl_last_error != cudaSuccess ? tl_last_error : sticky();
}

const char *cudaGetErrorName(cudaError_t e) {
  const auto *t = relat_emu::detail::find_error(e);
  return t ? t->name : "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
  const auto *t = relat_emu::detail::find_error(e);
  return t ? t->text : "unrecognized error code";
}

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return result(cudaErrorInvalidValue);
  *count = relat_emu::detail::g_device_count;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
  if (!device) return result(cudaErrorInvalidValue);
  *device = relat_emu::detail::tl_device;
  return sticky();
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= relat_emu::detail::g_device_count)
    return result(cudaErrorInvalidDevice);
  relat_emu::detail::tl_device = device;
  return result(sticky());
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
  if (!value) return result(cudaErrorInvalidValue);
  if (device < 0 || device >= relat_emu::detail::g_device_count)
    return result(cudaErrorInvalidDevice);
  using namespace relat_emu;
  using detail::device_arch, detail::shared_optin_limit, detail::sm_count;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = int(kMaxThreadsPerBlock); break;
    case cudaDevAttrMaxBlockDimX: *value = int(kMaxBlockDimXY); break;
    case cudaDevAttrMaxGridDimX: *value = int(kMaxGridDimX); break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(kDefaultMaxShared); break;
    case cudaDevAttrWarpSize: *value = int(kWarpSize); break;
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); break;
    case cudaDevAttrComputeCapabilityMajor: *value = device_arch() == 90 ? 9 : 8; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(shared_optin_limit()); break;
    default: return result(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return result(sticky()); }

cudaError_t cudaDeviceReset() {
  {
    std::lock_guard<std::mutex> lock(relat_emu::detail::g_mutex);
    relat_emu::detail::g_fault.clear();
    relat_emu::detail::g_dynamic_shared_limits.clear();
  }
  relat_emu::detail::g_sticky = cudaSuccess;
  tl_last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) {
  if (!stream) return result(cudaErrorInvalidValue);
  // A distinct handle holding the device it belongs to.
  *stream = reinterpret_cast<cudaStream_t>(new int(relat_emu::detail::tl_device));
  return sticky();
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<int *>(stream);
  return result(sticky());
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int *device) {
  if (!device) return result(cudaErrorInvalidValue);
  *device = relat_emu::detail::stream_device(stream);
  return result(sticky());
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return result(sticky()); }

// Device memory is host memory with CUDA's 256-byte alignment and no padding, so ASan's redzones
// sit right after the last requested byte.
cudaError_t cudaMalloc(void **ptr, size_t bytes) {
  if (!ptr) return result(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (cudaError_t e = sticky()) return result(e);
  if (bytes == 0) return cudaSuccess;
  if (posix_memalign(ptr, 256, bytes) != 0) {
    *ptr = nullptr;
    return result(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
  std::free(ptr);
  return result(sticky());
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = sticky()) return result(e);
  if (int(kind) < 0 || int(kind) > 4) return result(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return result(cudaErrorInvalidValue);
  std::memcpy(dst, src, bytes);  // overlapping ranges are an error in CUDA too; ASan reports them
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (relat_emu::detail::stream_device(stream) != relat_emu::detail::tl_device)
    return result(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
  if (cudaError_t e = sticky()) return result(e);
  if (bytes == 0) return cudaSuccess;
  if (!ptr) return result(cudaErrorInvalidValue);
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
  if (relat_emu::detail::stream_device(stream) != relat_emu::detail::tl_device)
    return result(cudaErrorInvalidResourceHandle);
  return cudaMemset(ptr, value, bytes);
}
