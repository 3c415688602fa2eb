// cos and sin of a RoPE angle, shared by the CPU twin (native/src/rope.cpp) and the CUDA kernel
// (kernels/rope.cu) so that both compute bit-identical cos/sin.
//
// Why not sincosf: CUDA's sincosf carries a Payne-Hanek slow path for large arguments that puts
// its scratch array in local memory (the build rejects local memory), and glibc's sincosf does not
// vectorise. Here the fp32 angle is reduced modulo pi/2 in double (two-term Cody-Waite with fma:
// the reduced argument is accurate to ~1e-16 for |angle| < 2^30, and RoPE angles are at most
// position * 1), then sin and cos come from the fdlibm kernel polynomials in double and are rounded
// once to fp32: the result is the correctly rounded fp32 cos/sin except within ~1e-16 of a
// rounding midpoint. Every step is an explicit fma or a single operation, so compilers cannot
// contract them differently on the two sides.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define RELAT_ROPE_HD __host__ __device__ __forceinline__
#else
#define RELAT_ROPE_HD inline
#endif

namespace relat::rope_math {

RELAT_ROPE_HD void sincos_angle(float angle, float *sin_out, float *cos_out) {
  const double x = angle;
  const double k = rint(x * 0.63661977236758134308);  // nearest multiple of pi/2
  double r = fma(-k, 1.5707963267948966192, x);         // pi/2, high part (exact product in fma)
  r = fma(-k, 6.123233995736766036e-17, r);             // pi/2 - high part
  const double z = r * r;
  double sp = fma(z, 1.58969099521155010221e-10, -2.50507602534068634195e-08);
  sp = fma(z, sp, 2.75573137070700676789e-06);
  sp = fma(z, sp, -1.98412698298579493134e-04);
  sp = fma(z, sp, 8.33333333332248946124e-03);
  sp = fma(z, sp, -1.66666666666666324348e-01);
  const double sin_r = fma(r * z, sp, r);
  double cp = fma(z, -1.13596475577881948265e-11, 2.08757232129817482790e-09);
  cp = fma(z, cp, -2.75573143513906633035e-07);
  cp = fma(z, cp, 2.48015872894767294178e-05);
  cp = fma(z, cp, -1.38888888888741095749e-03);
  cp = fma(z, cp, 4.16666666666666019037e-02);
  const double cos_r = fma(z * z, cp, fma(-0.5, z, 1.0));
  // Quadrant k mod 4 (the clamp keeps the conversion defined for absurd angles and NaN; a 32-bit
  // conversion vectorises on AVX2, a 64-bit one does not).
  const double kc = k >= -1.0e9 ? (k <= 1.0e9 ? k : 1.0e9) : -1.0e9;
  const int ki = int(kc);
  const int quadrant = ki & 3;
  const double s = (quadrant & 1) ? cos_r : sin_r;
  const double c = (quadrant & 1) ? sin_r : cos_r;
  *sin_out = float((quadrant & 2) ? -s : s);
  *cos_out = float(((quadrant + 1) & 2) ? -c : c);
}

}  // namespace relat::rope_math
