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

/* ---- RoPE: rotary position embedding, Qwen / Hugging Face rotate-half convention -----------------
 * For token t, head h and pair i in [0, D/2), D = head_dim:
 *   angle = float(positions[t]) * inv_freq[i]      (one fp32 multiply, as HF's fp32 matmul does)
 *   c = cos(angle), s = sin(angle)                 (fp32)
 *   x1 = x[t, h, i], x2 = x[t, h, i + D/2]
 *   forward:  out1 = x1*c - x2*s,  out2 = x2*c + x1*s     (out = x*cos + rotate_half(x)*sin)
 *   backward: out1 = x1*c + x2*s,  out2 = x2*c - x1*s     (the inverse rotation = its transpose;
 *             pass the output gradients as q/k and get the input gradients in q_out/k_out)
 * q, q_out: [tokens, q_heads, head_dim] in `dtype`, token stride ldq elements (>= q_heads*head_dim),
 *   heads and head_dim contiguous; k, k_out: [tokens, kv_heads, head_dim], token stride ldk. Both are
 *   rotated by one call. q_out may alias q and k_out may alias k (in place); no other overlap.
 *   kv_heads may be 0 (then k, k_out, ldk are ignored).
 * positions: [tokens] int64, any values (not necessarily a range); inv_freq: [head_dim/2] fp32, e.g.
 *   inv_freq[i] = 1 / theta^(2i/D) as HF computes it in fp32 (the Java op builds it with libtorch).
 * head_dim: even, 2..1024. Math in fp32 with fp32 cos/sin; one rounding when storing 16-bit outputs
 * (HF instead rounds cos/sin and every product to the activation dtype). */
RELAT_OP(rope_forward, (const void *q, const void *k, void *q_out, void *k_out,
                        const int64_t *positions, const float *inv_freq, int64_t tokens,
                        int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t ldq,
                        int64_t ldk, relat_dtype dtype, relat_stream stream))
RELAT_OP(rope_backward, (const void *dq, const void *dk, void *dq_in, void *dk_in,
                         const int64_t *positions, const float *inv_freq, int64_t tokens,
                         int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t ldq,
                         int64_t ldk, relat_dtype dtype, relat_stream stream))

/* ---- AdamW over a list of tensors, one launch ----------------------------------------------------
 * For every tensor j and element e (step >= 1, bias corrections bc1 = 1 - beta1^step and
 * bc2 = 1 - beta2^step computed in double on the host):
 *   p = p * (1 - lr*weight_decay)                              (decoupled decay, skipped when 0)
 *   m = beta1*m + (1-beta1)*g,   v = beta2*v + (1-beta2)*g*g
 *   p = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 * which is libtorch's AdamW (torch::optim::AdamW) in fp32. params: `param_dtype` (fp32, bf16 or
 * fp16); grads: `grad_dtype` (the param dtype or fp32); exp_avg, exp_avg_sq: fp32. 16-bit params are
 * updated in fp32 and rounded once to nearest even.
 * params, grads, exp_avg, exp_avg_sq, numels: HOST arrays of `count` entries; the pointers they hold
 * are device pointers on cuda. Tensors are contiguous and must not overlap. numels[j] may be 0.
 * The CUDA wrapper packs up to a few hundred tensors into the kernel's arguments per launch (no device
 * allocation, no copy); longer lists take more launches. */
RELAT_OP(adamw_step, (void *const *params, const void *const *grads, float *const *exp_avg,
                      float *const *exp_avg_sq, const int64_t *numels, int64_t count,
                      relat_dtype param_dtype, relat_dtype grad_dtype, double lr, double beta1,
                      double beta2, double eps, double weight_decay, int64_t step,
                      relat_stream stream))

/* ---- Sampling one token per row of logits, on the device -----------------------------------------
 * logits: [rows, vocab] in `dtype`, row stride ld elements (>= vocab). out: [rows] int64 (device
 * memory on cuda): the chosen token id of each row. Only out is written.
 * Order of tokens: by logit descending, ties by index ascending (a total order; -0 equals +0, NaN
 * ranks below everything and is never drawn unless nothing else can be).
 *   temperature <= 0: greedy, out = argmax (lowest index among equal maxima).
 *   temperature > 0: s = logit / temperature (fp32);
 *     top_k in [1, vocab): keep the first top_k tokens of the order (top_k <= 0 or >= vocab: all);
 *     top_p in (0, 1): then keep the shortest prefix of the kept tokens whose probability mass,
 *       renormalised over the kept tokens, is >= top_p (always at least one token); top_p >= 1: all;
 *     draw one kept token with probability proportional to exp(s - max s).
 * Masses are exact integers: w = floor(exp(s - max s) * 2^40) with an exp evaluated identically on
 * the CPU and the GPU, so the kept sets and the draw agree bit for bit between the two libraries.
 * Randomness: one 64-bit Philox-4x32-10 number per (seed, step, row), counter-based, no state; the
 * same (seed, step) gives the same ids on both libraries. If the kept mass is 0 (all logits -inf or
 * an +inf logit) the result is the greedy one.
 * workspace: relat_<lib>_sample_workspace_bytes(rows, vocab) bytes (0 on cuda, where it may be
 * NULL). The CPU twin runs with one row's share (the query with rows = 1) and uses one thread per
 * share it is given; greedy needs none. vocab: 1 .. 2^23. */
RELAT_OP(sample_workspace_bytes, (int64_t rows, int64_t vocab, int64_t *bytes))
RELAT_OP(sample, (const void *logits, int64_t rows, int64_t vocab, int64_t ld, float temperature,
                  int64_t top_k, float top_p, uint64_t seed, uint64_t step, int64_t *out,
                  void *workspace, int64_t workspace_bytes, relat_dtype dtype, relat_stream stream))

#ifdef __cplusplus
}
#endif

#endif /* RELAT_H */
