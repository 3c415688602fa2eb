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
 *  - device (cuda): an op runs on the device of its stream, whatever device is current on the
 *    calling thread, and leaves the caller's current device as it found it. A NULL stream means
 *    the current device of librelat_cuda's runtime on this thread: it links cudart statically, so
 *    that is not necessarily the device another runtime in the process (libtorch's) has current;
 *    relat_cuda_set_device sets it. Pointers must live on the op's device;
 *  - the return value is RELAT_OK or an error code; relat_<lib>_last_error() then holds a message
 *    for the calling thread. Kernels are asynchronous on cuda: an error inside a kernel may surface
 *    at a later call;
 *  - a workspace-taking op has a size query <op>_workspace_bytes(..., int64_t *bytes).
 * Ops are listed in the order a forward pass meets them, then the training and sampling ops. */
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

/* Makes `device` current on the calling thread for librelat_cuda's own (statically linked) CUDA
 * runtime: the device of every later op on this thread that is given the NULL stream. An op given
 * a stream switches to that stream's device for the call and back. Fails with
 * RELAT_ERR_INVALID_ARGUMENT for a device outside [0, relat_cuda_device_count()). */
RELAT_API relat_status relat_cuda_set_device(int device);

/* GEMM of the CPU fused cross-entropy's tile products (its CUDA twin always uses its own kernels).
 * RELAT_CPU_GEMM_OPENBLAS calls cblas_sgemm of the libopenblas.so.0 already loaded in the process
 * (the Java library always has it: libtorch links it); RELAT_CPU_GEMM_BUILTIN uses the library's
 * own register-blocked kernels; RELAT_CPU_GEMM_AUTO (the initial setting) is OpenBLAS when loaded,
 * else built-in. The process is searched once, at the first call that needs it.
 * relat_cpu_set_gemm(RELAT_CPU_GEMM_OPENBLAS) fails with RELAT_ERR_UNSUPPORTED when it is absent.
 * The workspace size depends on the GEMM in use: query it after changing the setting.
 * relat_cpu_gemm_in_use returns BUILTIN or OPENBLAS. */
typedef enum relat_cpu_gemm {
  RELAT_CPU_GEMM_AUTO = 0,
  RELAT_CPU_GEMM_BUILTIN = 1,
  RELAT_CPU_GEMM_OPENBLAS = 2
} relat_cpu_gemm;
RELAT_API relat_status relat_cpu_set_gemm(relat_cpu_gemm gemm);
RELAT_API relat_cpu_gemm relat_cpu_gemm_in_use(void);

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
 * rmsnorm_backward_workspace_bytes for the same rows and cols (its contents on entry do not
 * matter); the reduction over rows is deterministic (per-block partials, then a fixed-order sum). */
RELAT_OP(rmsnorm_backward_workspace_bytes, (int64_t rows, int64_t cols, int64_t *bytes))
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

/* ---- Attention (training) ----------------------------------------------------------------------
 * Causal attention of tq queries over tk = P + tq keys. The first P = tk - tq keys are a prefix
 * (the KV of earlier segments: prompt, earlier latent steps) that every query sees; the last tq
 * keys are causal with the queries: query i (0-based) attends to keys 0 .. P + i.
 * Grouped-query heads: query head h reads KV head h / (hq / hkv).
 *   q, out, dout, dq: [tq, hq, head_dim], contiguous (token-major, as the projections write them)
 *   k, v: [tk, hkv, head_dim]; token rows are kv_stride elements apart (kv_stride >= hkv*head_dim;
 *         equal when contiguous), so K/V can be read in place from a KV cache preallocated to its
 *         maximum length (or one that interleaves K and V rows)
 *   dk, dv: [tk, hkv, head_dim], contiguous
 *   lse: [tq, hq] fp32: natural-log log-sum-exp of the scaled, masked scores of each (query, head)
 * out = softmax(scale * q k^T + mask) v, scale typically 1/sqrt(head_dim).
 * head_dim: 64 or 128. hq must be a multiple of hkv. tk >= tq >= 0 (tq = 0 is a no-op).
 *
 * attention_backward: from dout, q, k, v, out, lse -> dq, dk, dv, including the gradients of the
 * prefix keys/values. dq is overwritten; dk and dv are overwritten, or accumulated into when
 * accumulate_dkv != 0 (the prefix gradient of several segments can then be summed in place).
 * workspace: fp32 scratch of at least attention_backward_workspace_bytes(...) bytes; the size
 * depends on the library (the CPU one may ask for more to parallelise over key blocks), any size
 * of at least 4*tq*hq (+ 4*tq*hq*head_dim unless dtype is RELAT_F32) bytes is accepted by both. */
RELAT_OP(attention_forward, (const void *q, const void *k, const void *v, void *out, float *lse,
                             int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t head_dim,
                             int64_t kv_stride, float scale, relat_dtype dtype, relat_stream stream))
RELAT_OP(attention_backward_workspace_bytes, (int64_t tq, int64_t tk, int64_t hq, int64_t hkv,
                                              int64_t head_dim, relat_dtype dtype, int64_t *bytes))
RELAT_OP(attention_backward, (const void *dout, const void *q, const void *k, const void *v,
                              const void *out, const float *lse, void *dq, void *dk, void *dv,
                              float *workspace, int64_t workspace_bytes, int64_t tq, int64_t tk,
                              int64_t hq, int64_t hkv, int64_t head_dim, int64_t kv_stride,
                              float scale, int accumulate_dkv, relat_dtype dtype,
                              relat_stream stream))

/* ---- Decode attention --------------------------------------------------------------------------
 * One query token per sequence over its KV cache, forward only (answer decoding).
 *   q, out: [batch, hq, head_dim], contiguous
 *   k_cache, v_cache: element (b, s, h, d) at b*cache_batch_stride + s*cache_seq_stride + h*head_dim
 *         + d, i.e. per sequence [max positions, hkv, head_dim] with the position rows
 *         cache_seq_stride >= hkv*head_dim elements apart; K and V share the strides. A cache
 *         preallocated to its maximum length is read in place, whatever its current length.
 *   seq_lens: int32 [batch] (device memory on cuda) with the number of valid positions of each
 *         sequence, or NULL when every sequence has max_len. Lengths are clamped to [0, max_len];
 *         a sequence of length 0 gets out = 0.
 * Each query attends to positions 0 .. len-1 (no causal mask: the query is the newest position).
 * The sequence is cut into splits (flash-decoding); the partial (max, sum, acc) of every split go
 * to the fp32 workspace of at least decode_attention_workspace_bytes(...) bytes, then a combine
 * pass writes out. head_dim: 64 or 128; hq a multiple of hkv. */
RELAT_OP(decode_attention_workspace_bytes, (int64_t batch, int64_t hq, int64_t head_dim,
                                            int64_t max_len, int64_t *bytes))
RELAT_OP(decode_attention_forward, (const void *q, const void *k_cache, const void *v_cache,
                                    void *out, const int32_t *seq_lens, int64_t batch,
                                    int64_t max_len, int64_t hq, int64_t hkv, int64_t head_dim,
                                    int64_t cache_seq_stride, int64_t cache_batch_stride,
                                    float scale, float *workspace, int64_t workspace_bytes,
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

/* ---- Few-row linear (GEMV): the projections of single-token passes ------------------------------
 * Decode, the latent chain and the single-token steps of its backward push 1 to a few rows through
 * every projection: the time floor is reading the weight once. Both ops stream w exactly once.
 *   gemv_forward:  y[r, j] = sum_c x[r, c] * w[j, c]   x [rows, k], y [rows, n]   (x w^T: a linear
 *                  layer's forward, no bias)
 *   gemv_backward: y[r, c] = sum_j x[r, j] * w[j, c]   x [rows, n], y [rows, k]   (dy w: the input
 *                  gradient of a frozen linear layer)
 * w: [n, k] row-major; x, y and w in `dtype`; fp32 accumulation, one rounding per output.
 * 0 <= rows <= RELAT_GEMV_MAX_ROWS (rows = 0 does nothing); y must not overlap x or w. */
#define RELAT_GEMV_MAX_ROWS 8
RELAT_OP(gemv_forward, (const void *x, const void *w, void *y, int64_t rows, int64_t n, int64_t k,
                        relat_dtype dtype, relat_stream stream))
RELAT_OP(gemv_backward, (const void *x, const void *w, void *y, int64_t rows, int64_t n, int64_t k,
                         relat_dtype dtype, relat_stream stream))

/* ---- Segmented LoRA (S-LoRA / Punica): one adapter per question in a batch ----------------------
 * B questions' rows are concatenated into one [rows, ...] matrix; rows [offsets[s], offsets[s+1])
 * belong to segment s, which has its own adapter a[s] [rank, in], b[s] [out, rank] (fp32,
 * contiguous: a [segments, rank, in], b [segments, out, rank]).
 *   lora_segmented_forward:   y[t, :] = round(y[t, :] + round(scale * b[s] (a[s] x[t, :])))
 *   lora_segmented_backward:  per segment s with rows X_s, dY_s (fp32 math):
 *       G_s = dY_s b[s]  [n_s, rank],   U_s = X_s a[s]^T  [n_s, rank]
 *       da[s] += scale * G_s^T X_s  [rank, in];   db[s] += scale * dY_s^T U_s  [out, rank]  (fp32)
 *       dx (may be NULL): dx[t, :] = round(dx[t, :] + round(scale * G_s[t] a[s]))
 * x, dx [rows, in] and y, dy [rows, out] in `dtype`; fp32 accumulation; the delta is rounded to
 * dtype and then added (libtorch: y.add_((x a^T b^T * scale).to(dtype))). y / dx must not overlap
 * any input.
 * offsets: int64 [segments + 1], in device memory for cuda (host memory for cpu); offsets[0] = 0,
 * nondecreasing, offsets[segments] = rows; empty segments allowed. The cpu library checks them and
 * fails naming the first bad entry; the cuda library cannot without a copy to the host, so it
 * clamps each bound into [previous bound, rows]: bad offsets give wrong rows, never a stray access.
 * Isolation: a segment's outputs (its rows of y / dx, its da[s] and db[s]) depend only on its own
 * rows and adapter, bit for bit, whatever the other segments hold and however many there are (no
 * atomics, fixed reduction orders; on cuda for base pointers of the same 16-byte alignment, which
 * picks the vector width). 1 <= segments <= RELAT_LORA_MAX_SEGMENTS,
 * 1 <= rank <= RELAT_LORA_MAX_RANK, in, out >= 1, rows >= 0 (rows = 0 does nothing). */
#define RELAT_LORA_MAX_SEGMENTS 256
#define RELAT_LORA_MAX_RANK 64
RELAT_OP(lora_segmented_forward,
         (const void *x, const float *a, const float *b, const int64_t *offsets, int64_t segments,
          int64_t rows, int64_t in, int64_t out, int64_t rank, float scale, void *y,
          relat_dtype dtype, relat_stream stream))
RELAT_OP(lora_segmented_backward,
         (const void *x, const void *dy, const float *a, const float *b, const int64_t *offsets,
          int64_t segments, int64_t rows, int64_t in, int64_t out, int64_t rank, float scale,
          float *da, float *db, void *dx, relat_dtype dtype, relat_stream stream))

/* ---- Fused linear cross-entropy (the reconstruction loss) --------------------------------------
 * For every counted position t (targets[t] != ignore_index):
 *   loss_t = logsumexp_v(h[t] . u[v]) - h[t] . u[targets[t]]
 * loss = mean of loss_t over the counted positions, written to one fp32 scalar, and
 * dh = d loss / d h = (softmax(h[t] u^T) - onehot(targets[t])) u / count, without ever holding the
 * [tokens, vocab] logits: the vocabulary is swept in tiles with an online log-sum-exp and the
 * gradient is accumulated in the same sweep (one pass: the two GEMMs' FLOPs, no recomputation).
 * h: [tokens, hidden] in `dtype`; u: [vocab, hidden] in `dtype` (the frozen LM head);
 * targets: [tokens] int64, each in [0, vocab) or equal to ignore_index (libtorch uses -100);
 * loss: one fp32 scalar; dh: [tokens, hidden] in `dtype`, rows of ignored positions are zeros.
 * The count of counted positions is computed by the kernel from targets (nothing crosses to the
 * host). With no counted position, loss is NaN (0/0, as libtorch's mean) and dh is all zeros.
 * A target outside [0, vocab) that is not ignore_index makes loss and that row of dh NaN (the CUDA
 * kernel cannot report it synchronously; the CPU twin does the same for identical semantics).
 * workspace: at least linear_cross_entropy_workspace_bytes(...) bytes, any alignment. On the CPU
 * the size depends on the GEMM in use (relat_cpu_set_gemm) and on the OpenMP thread count at the
 * time of the query; a call with fewer bytes fails. */
RELAT_OP(linear_cross_entropy_workspace_bytes, (int64_t tokens, int64_t hidden, int64_t vocab,
                                                relat_dtype dtype, int64_t *bytes))
RELAT_OP(linear_cross_entropy, (const void *h, const void *u, const int64_t *targets,
                                int64_t ignore_index, float *loss, void *dh, int64_t tokens,
                                int64_t hidden, int64_t vocab, void *workspace,
                                int64_t workspace_bytes, relat_dtype dtype, relat_stream stream))

/* ---- Latent step, soft mode (ReLAT default) ------------------------------------------------------
 * z[b, v] = (h[b] . u[v]) * inv_tau,  p[b] = softmax_v(z[b]),  e[b] = sum_v p[b, v] emb[v]
 * h: [batch, hidden]; u (LM head), emb (input embeddings): [vocab, hidden]; e: [batch, hidden]; all
 * in `dtype`. emb may be the same pointer as u (tied embeddings). One pass over u and emb.
 * Saved for the backward (either may be NULL in inference): lse [batch] fp32 = logsumexp_v z[b, v];
 * e32 [batch, hidden] fp32 = e before rounding to `dtype`.
 * Backward: with g[b, v] = emb[v] . de[b] and s[b] = sum_v p g = e32[b] . de[b],
 *   dh[b] = inv_tau * sum_v p[b, v] (g[b, v] - s[b]) u[v]
 * again in one pass over u and emb (p is recomputed from lse). dh is overwritten.
 * workspace: latent_soft_workspace_bytes gives the bytes of each direction (any alignment). */
RELAT_OP(latent_soft_workspace_bytes, (int64_t batch, int64_t hidden, int64_t vocab,
                                       relat_dtype dtype, int64_t *forward_bytes,
                                       int64_t *backward_bytes))
RELAT_OP(latent_soft_forward, (const void *h, const void *u, const void *emb, void *e, float *lse,
                               float *e32, int64_t batch, int64_t hidden, int64_t vocab,
                               float inv_tau, void *workspace, int64_t workspace_bytes,
                               relat_dtype dtype, relat_stream stream))
RELAT_OP(latent_soft_backward, (const void *h, const void *u, const void *emb, const float *lse,
                                const float *e32, const void *de, void *dh, int64_t batch,
                                int64_t hidden, int64_t vocab, float inv_tau, void *workspace,
                                int64_t workspace_bytes, relat_dtype dtype, relat_stream stream))

/* ---- Row rescale to a target norm (latent step, realign and identity modes) -----------------------
 * y[r] = x[r] * target_norm / max(||x[r]||, min_norm)     (LatentMAS uses min_norm = 1e-6)
 * Backward, with n = ||x[r]||: if n >= min_norm, dx[r] = target_norm / n * (dy[r] - x[r] (x[r].dy[r]) / n^2),
 * else dx[r] = dy[r] * target_norm / min_norm (the clamp has no gradient, as in libtorch).
 * x, y, dy, dx: [rows, cols] in `dtype`; y may alias x and dx may alias dy. */
RELAT_OP(row_rescale_forward, (const void *x, void *y, int64_t rows, int64_t cols, float target_norm,
                               float min_norm, relat_dtype dtype, relat_stream stream))
RELAT_OP(row_rescale_backward, (const void *x, const void *dy, void *dx, int64_t rows, int64_t cols,
                                float target_norm, float min_norm, relat_dtype dtype,
                                relat_stream stream))

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

/* ---- Profiling markers (plain functions, not ops: no tensors, no stream) ------------------------
 * For Nsight Systems / Nsight Compute started from the Java entry point (`relat solve --profile`).
 * librelat_cuda: range_push / range_pop are NVTX3 nvtxRangePushA / nvtxRangePop (header-only NVTX of
 * the CUDA toolkit: a no-op unless a tool such as nsys injects itself), start / stop are
 * cudaProfilerStart / cudaProfilerStop (the capture range of `nsys --capture-range=cudaProfilerApi`
 * and of `ncu --profile-from-start off`). librelat_cpu: all four are no-ops returning RELAT_OK.
 * name: a NUL-terminated string, not NULL (RELAT_ERR_INVALID_ARGUMENT); NVTX copies it.
 * start / stop return RELAT_ERR_DEVICE when the CUDA runtime fails (no driver, no device). */
RELAT_API relat_status relat_cpu_profile_range_push(const char *name);
RELAT_API relat_status relat_cpu_profile_range_pop(void);
RELAT_API relat_status relat_cpu_profile_start(void);
RELAT_API relat_status relat_cpu_profile_stop(void);
RELAT_API relat_status relat_cuda_profile_range_push(const char *name);
RELAT_API relat_status relat_cuda_profile_range_pop(void);
RELAT_API relat_status relat_cuda_profile_start(void);
RELAT_API relat_status relat_cuda_profile_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* RELAT_H */
