// Launches that break (or just meet) one launch limit each: launch_faults.cu,
// launch_limits_test.cpp.
#pragma once

enum relat_launch_case {
  LAUNCH_BOUND_OK,                // __launch_bounds__(256), 256 threads
  LAUNCH_BOUND_EXCEEDED,          // the same kernel, 512 threads (latent_step's old rescale bug)
  LAUNCH_BLOCK_1024,              // 32 x 32 threads
  LAUNCH_BLOCK_OVER_1024,         // 32 x 33 threads
  LAUNCH_GRID_Y_OK,               // grid.y 65,535
  LAUNCH_GRID_Y_OVER,             // grid.y 65,536
  LAUNCH_GRID_X_OVER,             // grid.x 2^31
  LAUNCH_SHARED_48K,              // 8 KiB static + 40 KiB dynamic
  LAUNCH_SHARED_OVER_48K,         // 4 bytes more, without the opt-in
  LAUNCH_SHARED_OPTED_IN,         // the same with cudaFuncSetAttribute
  LAUNCH_SHARED_OPTIN_OVER_SM80,  // opting in to static + dynamic beyond 163 KiB
  LAUNCH_REGISTERS_OVER,          // ~100 registers per thread, 1,024 threads
  LAUNCH_REGISTERS_OK,            // the same kernel, 256 threads
};

extern "C" {
// The launch's error (cudaGetLastError after it), as an int.
int relat_launch_fault(relat_launch_case which, float *out);
// cudaFuncGetAttributes of the case's kernel (LAUNCH_BOUND_OK, LAUNCH_SHARED_48K,
// LAUNCH_REGISTERS_OK).
int relat_launch_fault_attributes(relat_launch_case which, int *max_threads, int *static_shared,
                                  int *registers);
}
