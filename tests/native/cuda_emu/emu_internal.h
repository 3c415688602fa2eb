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

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace relat_emu::detail
