// Internal interface between the emulation's scheduler (emu_scheduler.cpp) and its runtime API
// (emu_runtime.cpp): error state, per-kernel attributes and the dynamic shared memory buffer.
#pragma once

#include <string>

#include "cuda_emu.h"

// One buffer per OS thread, defined by the file dynamic_shared.cmake generates for each test
// executable, together with the aliases that bind every `extern __shared__` array to it.
extern "C" thread_local unsigned char relat_emu_dynamic_shared[];

namespace relat_emu::detail {

// The calling host thread's last error (cleared by cudaGetLastError).
void set_last_error(cudaError_t e);
// A kernel fault is sticky, as on a GPU: every later call fails until cudaDeviceReset.
cudaError_t sticky_error();
void raise_fault(const std::string &message);
// Dynamic shared memory a launch of `func` may ask for (48 KiB unless raised by
// cudaFuncSetAttribute).
size_t dynamic_shared_limit(const void *func);

// Emulated devices (relat_emu::set_device_count) and the calling thread's current one.
inline int g_device_count = 1;
inline thread_local int tl_device = 0;
// The device a stream belongs to; the NULL stream is the current device's.
inline int stream_device(cudaStream_t stream) {
  return stream ? *reinterpret_cast<const int *>(stream) : tl_device;
}

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Inter-block conflict detection (emu_race.cpp). Inactive unless enable() ran, which the hooks of
// emu_race_hooks.cpp do when a race-instrumented kernel object is loaded.
namespace race {
enum class Access : uint8_t { Read, Write, AtomicLoad, AtomicUpdate };
void enable();
bool enabled();
void thread_init(const void *stacks, size_t bytes);  // a worker's fiber stacks, never global
void launch_begin(dim3 grid);
std::string launch_end();  // the first conflict of the launch, "" if none
void block_begin(uint64_t linear);
void block_end();
void access(const void *p, size_t n, Access k, const void *pc);
}  // namespace race

}  // namespace relat_emu::detail
