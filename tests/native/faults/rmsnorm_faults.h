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
  RELAT_FAULT_TRAILING_BARRIER = 5,  // block reduction without its last barrier, scratch reused
};

extern "C" {
// max_blocks > 0: at most that many blocks, each striding over rows (blockIdx.x, + gridDim.x, ...),
// as the dweight path of the RMSNorm backward does; 0: one block per row.
relat_status relat_fault_rmsnorm_forward(relat_fault fault, const float *x, const float *w,
                                         float *y, float *rstd, int64_t rows, int64_t cols,
                                         float eps, int64_t max_blocks);
// The dweight of the RMSNorm backward, dw[c] = sum over rows of dy*x*rstd, split over blocks of
// rows_per_block rows that each add their partial into dw (which the caller zeroes): with
// atomicAdd when `atomic`, else with a plain `dw[c] += partial` (the seeded fault).
relat_status relat_fault_split_dweight(bool atomic, const float *dy, const float *x,
                                       const float *rstd, float *dw, int64_t rows, int64_t cols,
                                       int64_t rows_per_block);
// Whether this executable's kernels carry the inter-block conflict check (the _race build).
bool relat_fault_race_checked();
// Clears the sticky kernel fault (cudaDeviceReset) and returns the emulation's fault message.
const char *relat_fault_message();
void relat_fault_reset();
}
