// Seeded-fault copies of the RMSNorm kernel (rmsnorm_faults.cu), fp32 only, for fault_test.cpp.
#pragma once

#include <cstdint>

#include "relat/relat.h"

enum relat_fault {
  RELAT_FAULT_NONE = 0,             // the kernel as in kernels/rmsnorm.cu (control)
  RELAT_FAULT_DROPPED_BARRIER = 1,  // block reduction without the barrier after the warp partials
  RELAT_FAULT_ROW_OVERRUN = 2,      // loops run to c <= cols: one element past each row
  RELAT_FAULT_SHUFFLE_OFFSET = 3,   // warp butterfly one step off: offsets 32..2 instead of 16..1
  RELAT_FAULT_EARLY_EXIT = 4,       // threads past the row's end return before the reduction
};

extern "C" {
relat_status relat_fault_rmsnorm_forward(relat_fault fault, const float *x, const float *w,
                                         float *y, float *rstd, int64_t rows, int64_t cols,
                                         float eps);
// Clears the sticky kernel fault (cudaDeviceReset) and returns the emulation's fault message.
const char *relat_fault_message();
void relat_fault_reset();
}
