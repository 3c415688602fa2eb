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

/* Storage type of integer index tensors (token ids). */
typedef enum relat_index_dtype { RELAT_I32 = 0, RELAT_I64 = 1 } relat_index_dtype;

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

/* RMSNorm backward, from the rstd saved by the forward (always fp32):
 *   dx[r, c] = rstd[r] * weight[c] * dy[r, c] - x[r, c] * rstd[r]^3 / cols * sum_k dy[r,k] weight[k] x[r,k]
 *   dweight[c] = sum_r dy[r, c] * x[r, c] * rstd[r]          (fp32, [cols]; optional)
 * dx may alias dy. dweight may be NULL: then no workspace is needed and both may be NULL/0.
 * When dweight is requested, `workspace` must hold at least the bytes returned by
 * rmsnorm_backward_workspace_size for the same rows and cols (its contents on entry do not
 * matter); the reduction over rows is deterministic (per-block partials, then a fixed-order sum). */
RELAT_OP(rmsnorm_backward_workspace_size, (int64_t rows, int64_t cols, int64_t *bytes))
RELAT_OP(rmsnorm_backward, (const void *dy, const void *x, const void *weight, const float *rstd,
                            void *dx, float *dweight, void *workspace, int64_t workspace_bytes,
                            int64_t rows, int64_t cols, relat_dtype dtype, relat_stream stream))

/* ---- Residual add + RMSNorm -----------------------------------------------------------------
 * s = x + r (rounded to `dtype` and written out: the next residual), y = rmsnorm(s) as above.
 * s may alias x or r; y may alias x or r but not s. rstd: [rows] fp32, may be NULL. */
RELAT_OP(add_rmsnorm_forward, (const void *x, const void *r, void *s, const void *weight, void *y,
                               float *rstd, int64_t rows, int64_t cols, float eps, relat_dtype dtype,
                               relat_stream stream))
/* Its backward: ds = rmsnorm_backward(dy; s, weight, rstd) + ds_next, where ds_next is the gradient
 * reaching s through the residual stream; ds is the gradient of both x and r. ds may alias dy or
 * ds_next. dweight / workspace as for rmsnorm_backward (same workspace size query). */
RELAT_OP(add_rmsnorm_backward, (const void *dy, const void *ds_next, const void *s,
                                const void *weight, const float *rstd, void *ds, float *dweight,
                                void *workspace, int64_t workspace_bytes, int64_t rows, int64_t cols,
                                relat_dtype dtype, relat_stream stream))

/* ---- SwiGLU ----------------------------------------------------------------------------------
 * out[r, c] = silu(gate[r, c]) * up[r, c], silu(g) = g / (1 + exp(-g)), for c < cols.
 * gate and up are [rows, cols] views with the common leading dimension ld_in (elements): two
 * separate [rows, cols] tensors have ld_in = cols; a fused projection output gu [rows, 2*cols]
 * laid out [gate | up] per row is gate = gu, up = gu + cols, ld_in = 2*cols. out: [rows, cols],
 * contiguous; it may alias gate when ld_in == cols. */
RELAT_OP(swiglu_forward, (const void *gate, const void *up, int64_t ld_in, void *out, int64_t rows,
                          int64_t cols, relat_dtype dtype, relat_stream stream))
/* dgate = dout * up * silu'(gate), dup = dout * silu(gate); dgate / dup share ld_grad (fused: dgate =
 * dgu, dup = dgu + cols, ld_grad = 2*cols). dout: [rows, cols] contiguous. The gradients may alias
 * gate / up (same layout) and dout; every element is read before its own position is written. */
RELAT_OP(swiglu_backward, (const void *dout, const void *gate, const void *up, int64_t ld_in,
                           void *dgate, void *dup, int64_t ld_grad, int64_t rows, int64_t cols,
                           relat_dtype dtype, relat_stream stream))

/* ---- Embedding gather ------------------------------------------------------------------------
 * out[i, :] = table[ids[i], :] for i < n; table: [vocab, dim] in `dtype`, out: [n, dim].
 * ids (int32 or int64, `id_dtype`) live where the kernel runs (device memory for cuda).
 * An id outside [0, vocab) is never read past:
 *  - cpu: every id is checked before any row is read; the call fails with a message naming the
 *    first bad id and its position, writes nothing to out, and lowers *bad_position as below;
 *  - cuda: the check would need a device->host copy, so the kernel records it instead: the row of
 *    a bad id is filled with zeros and the smallest bad position is stored into *bad_position
 *    (atomic minimum, as unsigned), which the caller must set to -1 beforehand. The flag is sticky:
 *    several launches may share it, and the caller checks it when it chooses (one copy to the host).
 * On both, bad_position may be NULL (cuda: bad rows are then zero-filled silently). */
RELAT_OP(embedding_forward, (const void *ids, relat_index_dtype id_dtype, int64_t n,
                             const void *table, int64_t vocab, int64_t dim, void *out,
                             int64_t *bad_position, relat_dtype dtype, relat_stream stream))

#ifdef __cplusplus
}
#endif

#endif /* RELAT_H */
