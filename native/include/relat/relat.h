/* relat C ABI: the one header for both kernel libraries.
 *
 * librelat_cpu exports relat_cpu_<op>, librelat_cuda exports relat_cuda_<op>. Both are declared
 * from the same parameter list by RELAT_OP, so a twin that drifts from its CUDA kernel's signature
 * fails to compile. Distinct prefixes let both libraries live in one process without symbol clashes.
 *
 * Conventions for every op:
 *  - pointers are host pointers (cpu) or device pointers (cuda); the caller owns all memory;
 *  - tensors are row-major and contiguous unless a leading dimension says otherwise;
 *  - `dtype` tags the storage type of the activation tensors; statistics saved for a backward
 *    (rstd, log-sum-exp, ...) are always fp32; accumulation is always fp32;
 *  - `stream` is a cudaStream_t for cuda (NULL = legacy default stream) and ignored on cpu;
 *  - the return value is RELAT_OK or an error code; relat_<lib>_last_error() then holds a message
 *    for the calling thread. Kernels are asynchronous on cuda: an error inside a kernel may surface
 *    at a later call.
 */
#ifndef RELAT_H
#define RELAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define RELAT_API __declspec(dllexport)
#else
#define RELAT_API __attribute__((visibility("default")))
#endif

typedef enum relat_dtype { RELAT_F32 = 0, RELAT_BF16 = 1, RELAT_F16 = 2 } relat_dtype;

typedef enum relat_status {
  RELAT_OK = 0,
  RELAT_ERR_INVALID_ARGUMENT = 1, /* null pointer, negative or inconsistent size, bad dtype tag */
  RELAT_ERR_UNSUPPORTED = 2,      /* a valid request this build cannot serve */
  RELAT_ERR_DEVICE = 3,           /* CUDA runtime or launch failure */
  RELAT_ERR_INTERNAL = 4
} relat_status;

typedef void *relat_stream;

/* Declares relat_cpu_<op> and relat_cuda_<op> with one parameter list. */
#define RELAT_OP(op, params)                  \
  RELAT_API relat_status relat_cpu_##op params; \
  RELAT_API relat_status relat_cuda_##op params;

/* Thread-local message of the last failed call on this thread ("" if none). */
RELAT_API const char *relat_cpu_last_error(void);
RELAT_API const char *relat_cuda_last_error(void);

/* Library version, "major.minor.patch", and what the CUDA library was built for (e.g. "sm_80 sm_90").
 * relat_cuda_device_count returns the number of visible CUDA devices, 0 when there is no driver. */
RELAT_API const char *relat_cpu_version(void);
RELAT_API const char *relat_cuda_version(void);
RELAT_API const char *relat_cuda_architectures(void);
RELAT_API int relat_cuda_device_count(void);

/* ---- RMSNorm ---------------------------------------------------------------------------------
 * y[r, :] = x[r, :] * rstd[r] * weight,  rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps)
 * x, y: [rows, cols] in `dtype`; weight: [cols] in `dtype`; rstd: [rows] fp32, may be NULL.
 * y may alias x. */
RELAT_OP(rmsnorm_forward, (const void *x, const void *weight, void *y, float *rstd, int64_t rows,
                           int64_t cols, float eps, relat_dtype dtype, relat_stream stream))

#ifdef __cplusplus
}
#endif

#endif /* RELAT_H */
