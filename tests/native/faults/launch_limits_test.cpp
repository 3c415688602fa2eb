// The emulation refuses the launches a GPU refuses, with the GPU's error, and accepts those just
// inside each limit (launch_faults.cu). The per-kernel limits come from nvcc's compilation of the
// same source, so this test exists only when nvcc was found.
#include <vector>

#include "cuda_emu.h"
#include "launch_faults.h"
#include "test_util.h"

using namespace relat::test;

namespace {

void expect(Counter &c, float *out, relat_launch_case which, cudaError_t want, const char *what) {
  const cudaError_t got = cudaError_t(relat_launch_fault(which, out));
  c.check(got == want, "%s: %s (want %s)", what, cudaGetErrorName(got), cudaGetErrorName(want));
}

}  // namespace

int main() {
  Counter c;
  std::vector<float> out(1 << 16);
  float *o = out.data();

  int threads = 0, shared = 0, registers = 0;
  c.check(relat_launch_fault_attributes(LAUNCH_BOUND_OK, &threads, &shared, &registers) == 0 &&
              threads == 256,
          "cudaFuncGetAttributes: __launch_bounds__(256) gives maxThreadsPerBlock %d", threads);
  c.check(relat_launch_fault_attributes(LAUNCH_SHARED_48K, &threads, &shared, &registers) == 0 &&
              shared == 8192,
          "cudaFuncGetAttributes: 8 KiB of static shared memory gives sharedSizeBytes %d", shared);
  const bool heavy =
      relat_launch_fault_attributes(LAUNCH_REGISTERS_OK, &threads, &shared, &registers) == 0;
  c.check(heavy && registers > 64 && threads < 1024,
          "the register-heavy kernel needs more than the 64 registers a 1024-thread block allows: "
          "%d registers, at most %d threads",
          registers, threads);

  expect(c, o, LAUNCH_BOUND_OK, cudaSuccess, "256 threads, __launch_bounds__(256)");
  expect(c, o, LAUNCH_BOUND_EXCEEDED, cudaErrorLaunchOutOfResources,
         "512 threads, __launch_bounds__(256)");
  expect(c, o, LAUNCH_BLOCK_1024, cudaSuccess, "a 32 x 32 block");
  expect(c, o, LAUNCH_BLOCK_OVER_1024, cudaErrorInvalidConfiguration, "a 32 x 33 block");
  expect(c, o, LAUNCH_GRID_Y_OK, cudaSuccess, "grid.y 65,535");
  expect(c, o, LAUNCH_GRID_Y_OVER, cudaErrorInvalidConfiguration, "grid.y 65,536");
  expect(c, o, LAUNCH_GRID_X_OVER, cudaErrorInvalidConfiguration, "grid.x 2^31");
  expect(c, o, LAUNCH_SHARED_48K, cudaSuccess, "8 KiB static + 40 KiB dynamic shared memory");
  expect(c, o, LAUNCH_SHARED_OVER_48K, cudaErrorInvalidValue,
         "8 KiB static + 40 KiB + 4 bytes dynamic without cudaFuncSetAttribute");
  expect(c, o, LAUNCH_SHARED_OPTED_IN, cudaSuccess, "the same after cudaFuncSetAttribute");
  expect(c, o, LAUNCH_SHARED_OPTIN_OVER_SM80, cudaErrorInvalidValue,
         "cudaFuncSetAttribute to static + dynamic 4 bytes beyond sm_80's 163 KiB");
  expect(c, o, LAUNCH_REGISTERS_OK, cudaSuccess, "the register-heavy kernel with 256 threads");
  expect(c, o, LAUNCH_REGISTERS_OVER, cudaErrorLaunchOutOfResources,
         "the register-heavy kernel with 1,024 threads");
  // Refused launches are not kernel faults: nothing sticky is left behind.
  expect(c, o, LAUNCH_BOUND_OK, cudaSuccess, "a good launch after the refused ones");
  return c.finish();
}
