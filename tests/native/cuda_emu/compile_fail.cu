// CUDA the emulation cannot express must not compile. Each case below is compiled on its own by a
// CTest test (tests/native/CMakeLists.txt) that expects the diagnostic named there; case 0 uses
// only supported features and must compile, so a failing case fails for its own reason.
struct Pair {
  float a, b;
};

__global__ void kernel(float *out, Pair p, int n) {
  float v = out[threadIdx.x];
#if RELAT_EMU_CASE == 0
  v = __shfl_xor_sync(0xffffffffu, v, 1) + __bfloat162float(__float2bfloat16_rn(v));
#elif RELAT_EMU_CASE == 1  // pre-Volta shuffle without a mask
  v = __shfl_down(v, 1);
#elif RELAT_EMU_CASE == 2  // a shuffle of a type CUDA has no overload for
  p = __shfl_xor_sync(0xffffffffu, p, 1);
#elif RELAT_EMU_CASE == 3  // built-in indices are read-only
  threadIdx.x = 0;
#elif RELAT_EMU_CASE == 4  // a rounding mode other than to-nearest
  v = __bfloat162float(__float2bfloat16_rz(v));
#elif RELAT_EMU_CASE == 5  // warp match intrinsics are not emulated
  v = float(__match_any_sync(0xffffffffu, n));
#endif
  out[threadIdx.x] = v + p.a + float(n);
}

#if RELAT_EMU_CASE == 6  // constant memory is not emulated
__constant__ float table[4];
#endif
#if RELAT_EMU_CASE == 7  // nor are the other CUDA headers
#include <cooperative_groups.h>
#endif

__global__ void by_reference(float &out) { out = 1.f; }

void host(float *out) {
#if RELAT_EMU_CASE == 8  // wrong number of kernel arguments
  RELAT_LAUNCH(1, 32, 0, nullptr, kernel)(out, Pair{1, 2});
#elif RELAT_EMU_CASE == 9   // reference parameters cannot cross to the device
  RELAT_LAUNCH(1, 32, 0, nullptr, by_reference)(*out);
#elif RELAT_EMU_CASE == 10  // an argument with no implicit conversion to its parameter
  RELAT_LAUNCH(1, 32, 0, nullptr, kernel)(static_cast<void *>(out), Pair{1, 2}, 3);
#else
  RELAT_LAUNCH(1, 32, 0, nullptr, kernel)(out, Pair{1, 2}, 3);
#endif
}
