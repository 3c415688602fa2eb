// OpenBLAS's cblas_sgemm for the CPU twins' dense tile products, found in the process at run time.
// No link-time dependency: the library still builds and runs where OpenBLAS is absent (the C++
// tests, the GPU check machine), with its built-in kernels.
#pragma once

#include "relat/relat.h"

namespace relat::cpu {

// cblas_sgemm's C signature; the CBLAS enums are ints (row-major 101, no-trans 111, trans 112).
using Sgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc);
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;

// The sgemm selected by relat_cpu_set_gemm, or nullptr for the built-in kernels.
Sgemm sgemm_in_use();

}  // namespace relat::cpu
