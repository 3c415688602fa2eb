// Argument checks shared by the CPU twins and the CUDA wrappers, so both libraries reject exactly
// the same calls with the same message. Each returns "" when the call is valid.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "attention_plan.h"
#include "relat/relat.h"

namespace relat::validate {

inline std::string format(const char *fmt, long long a = 0, long long b = 0, long long c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

inline std::string dtype(const char *op, relat_dtype d) {
  if (d == RELAT_F32 || d == RELAT_BF16 || d == RELAT_F16) return {};
  return std::string(op) + format(": unknown dtype tag %lld", d);
}

inline std::string rows_cols(const char *op, int64_t rows, int64_t cols) {
  if (rows >= 0 && cols > 0) return {};
  return std::string(op) + format(": bad shape rows=%lld cols=%lld", rows, cols);
}

inline std::string not_null(const char *op, const char *name, const void *p) {
  if (p) return {};
  return std::string(op) + ": " + name + " is null";
}

inline std::string rmsnorm_forward(const void *x, const void *weight, const void *y, int64_t rows,
                                   int64_t cols, float eps, relat_dtype d) {
  const char *op = "rmsnorm_forward";
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && rows > 0) m = not_null(op, "x", x);
  if (m.empty() && rows > 0) m = not_null(op, "weight", weight);
  if (m.empty() && rows > 0) m = not_null(op, "y", y);
  if (m.empty() && !(eps >= 0.f)) m = std::string(op) + ": eps must be >= 0";
  return m;
}

// ---- attention -----------------------------------------------------------------------------------

// Sizes are capped so that row indices fit in 32 bits on the GPU and no product overflows.
constexpr int64_t kAttentionMaxRows = (int64_t(1) << 31) - 1;

// The CUDA kernels move rows with 16-byte vector accesses: activation pointers must be 16-byte
// aligned and row strides multiples of 8 elements (both libraries require it, so they agree).
inline std::string aligned16(const char *op, const char *name, const void *p) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 15u) == 0) return {};
  return std::string(op) + ": " + name + " is not 16-byte aligned";
}

inline std::string attention_heads(const char *op, int64_t hq, int64_t hkv, int64_t head_dim) {
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0 || hq > 4096)
    return std::string(op) + format(": bad heads hq=%lld hkv=%lld (hq must be a positive multiple "
                                    "of hkv, at most 4096)", hq, hkv);
  if (head_dim != 64 && head_dim != 128)
    return std::string(op) + format(": head_dim %lld is not supported (64 or 128)", head_dim);
  return {};
}

inline std::string attention_shape(const char *op, int64_t tq, int64_t tk, int64_t hq, int64_t hkv,
                                   int64_t head_dim, int64_t kv_stride, float scale,
                                   relat_dtype d) {
  std::string m = dtype(op, d);
  if (m.empty()) m = attention_heads(op, hq, hkv, head_dim);
  if (m.empty() && !(tq >= 0 && tk >= tq))
    m = std::string(op) + format(": bad lengths tq=%lld tk=%lld (need 0 <= tq <= tk)", tq, tk);
  if (m.empty() && (tk > kAttentionMaxRows || tq * hq > kAttentionMaxRows))
    m = std::string(op) + format(": too large: tk=%lld, tq*hq=%lld (each must be below 2^31)", tk,
                                 tq * hq);
  if (m.empty() && kv_stride < hkv * head_dim)
    m = std::string(op) + format(": kv_stride %lld is smaller than hkv*head_dim = %lld", kv_stride,
                                 hkv * head_dim);
  if (m.empty() && kv_stride % 8 != 0)
    m = std::string(op) + format(": kv_stride %lld is not a multiple of 8 elements", kv_stride);
  if (m.empty() && !(scale == scale && scale - scale == 0.f))
    m = std::string(op) + ": scale must be finite";
  return m;
}

inline std::string attention_forward(const void *q, const void *k, const void *v, const void *out,
                                     const float *lse, int64_t tq, int64_t tk, int64_t hq,
                                     int64_t hkv, int64_t head_dim, int64_t kv_stride, float scale,
                                     relat_dtype d) {
  const char *op = "attention_forward";
  std::string m = attention_shape(op, tq, tk, hq, hkv, head_dim, kv_stride, scale, d);
  if (m.empty() && tq > 0) m = not_null(op, "q", q);
  if (m.empty() && tq > 0) m = not_null(op, "k", k);
  if (m.empty() && tq > 0) m = not_null(op, "v", v);
  if (m.empty() && tq > 0) m = not_null(op, "out", out);
  if (m.empty() && tq > 0) m = not_null(op, "lse", lse);
  if (m.empty() && tq > 0) {
    const char *names[] = {"q", "k", "v", "out"};
    const void *ptrs[] = {q, k, v, out};
    for (int i = 0; i < 4 && m.empty(); ++i) m = aligned16(op, names[i], ptrs[i]);
  }
  return m;
}

inline std::string attention_backward_workspace_bytes(int64_t tq, int64_t tk, int64_t hq, int64_t hkv,
                                                int64_t head_dim, relat_dtype d,
                                                const int64_t *bytes) {
  const char *op = "attention_backward_workspace_bytes";
  std::string m = attention_shape(op, tq, tk, hq, hkv, head_dim, hkv * head_dim, 1.f, d);
  if (m.empty()) m = not_null(op, "bytes", bytes);
  return m;
}

inline std::string attention_backward(const void *dout, const void *q, const void *k,
                                      const void *v, const void *out, const float *lse,
                                      const void *dq, const void *dk, const void *dv,
                                      const float *workspace, int64_t workspace_bytes, int64_t tq,
                                      int64_t tk, int64_t hq, int64_t hkv, int64_t head_dim,
                                      int64_t kv_stride, float scale, relat_dtype d) {
  const char *op = "attention_backward";
  std::string m = attention_shape(op, tq, tk, hq, hkv, head_dim, kv_stride, scale, d);
  if (m.empty() && tk > 0) m = not_null(op, "dk", dk);
  if (m.empty() && tk > 0) m = not_null(op, "dv", dv);
  if (m.empty() && tq > 0) {
    const char *names[] = {"dout", "q", "k", "v", "out", "lse", "dq", "workspace"};
    const void *ptrs[] = {dout, q, k, v, out, lse, dq, workspace};
    for (int i = 0; i < 8 && m.empty(); ++i) m = not_null(op, names[i], ptrs[i]);
    for (int i = 0; i < 7 && m.empty(); ++i)
      if (i != 5) m = aligned16(op, names[i], ptrs[i]);  // lse is read per element
  }
  if (m.empty() && tk > 0) m = aligned16(op, "dk", dk);
  if (m.empty() && tk > 0) m = aligned16(op, "dv", dv);
  if (m.empty()) {
    const int64_t need = plan::attention_backward_min_workspace_bytes(tq, hq, head_dim, d);
    if (workspace_bytes < need)
      m = std::string(op) + format(": workspace has %lld bytes; needs at least %lld "
                                   "(attention_backward_workspace_bytes)", workspace_bytes, need);
  }
  return m;
}

inline std::string decode_attention_shape(const char *op, int64_t batch, int64_t max_len,
                                          int64_t hq, int64_t hkv, int64_t head_dim) {
  std::string m = attention_heads(op, hq, hkv, head_dim);
  if (m.empty() && !(batch >= 0 && max_len >= 0))
    m = std::string(op) + format(": bad shape batch=%lld max_len=%lld", batch, max_len);
  if (m.empty() && (max_len > kAttentionMaxRows || batch > 65535))
    m = std::string(op) + format(": too large: batch=%lld (at most 65535), max_len=%lld (below "
                                 "2^31)", batch, max_len);
  return m;
}

inline std::string decode_attention_workspace_bytes(int64_t batch, int64_t hq, int64_t head_dim,
                                              int64_t max_len, const int64_t *bytes) {
  const char *op = "decode_attention_workspace_bytes";
  std::string m = decode_attention_shape(op, batch, max_len, hq, hq, head_dim);
  if (m.empty()) m = not_null(op, "bytes", bytes);
  return m;
}

inline std::string decode_attention_forward(const void *q, const void *k_cache,
                                            const void *v_cache, const void *out, int64_t batch,
                                            int64_t max_len, int64_t hq, int64_t hkv,
                                            int64_t head_dim, int64_t cache_seq_stride,
                                            int64_t cache_batch_stride, float scale,
                                            const float *workspace, int64_t workspace_bytes,
                                            relat_dtype d) {
  const char *op = "decode_attention_forward";
  std::string m = dtype(op, d);
  if (m.empty()) m = decode_attention_shape(op, batch, max_len, hq, hkv, head_dim);
  if (m.empty() && cache_seq_stride < hkv * head_dim)
    m = std::string(op) + format(": cache_seq_stride %lld is smaller than hkv*head_dim = %lld",
                                 cache_seq_stride, hkv * head_dim);
  if (m.empty() && (cache_seq_stride % 8 != 0 || cache_batch_stride % 8 != 0))
    m = std::string(op) + format(": cache strides %lld, %lld are not multiples of 8 elements",
                                 cache_seq_stride, cache_batch_stride);
  if (m.empty() && cache_batch_stride < 0)
    m = std::string(op) + format(": cache_batch_stride %lld is negative", cache_batch_stride);
  if (m.empty() && !(scale == scale && scale - scale == 0.f))
    m = std::string(op) + ": scale must be finite";
  if (m.empty() && batch > 0) m = not_null(op, "q", q);
  if (m.empty() && batch > 0) m = not_null(op, "out", out);
  if (m.empty() && batch > 0 && max_len > 0) m = not_null(op, "k_cache", k_cache);
  if (m.empty() && batch > 0 && max_len > 0) m = not_null(op, "v_cache", v_cache);
  if (m.empty() && batch > 0) m = aligned16(op, "q", q);
  if (m.empty() && batch > 0) m = aligned16(op, "out", out);
  if (m.empty() && batch > 0 && max_len > 0) m = aligned16(op, "k_cache", k_cache);
  if (m.empty() && batch > 0 && max_len > 0) m = aligned16(op, "v_cache", v_cache);
  if (m.empty()) {
    const int64_t need = plan::decode_plan(batch, hq, head_dim, max_len).workspace_bytes;
    if (need > 0) m = not_null(op, "workspace", workspace);
    if (m.empty() && workspace_bytes < need)
      m = std::string(op) + format(": workspace has %lld bytes; needs at least %lld "
                                   "(decode_attention_workspace_bytes)", workspace_bytes, need);
  }
  return m;
}

// ---- linear cross-entropy, latent step, row rescale ----

inline std::string dims(const char *op, const char *a, int64_t va, const char *b, int64_t vb,
                        const char *c, int64_t vc) {
  if (va >= 0 && vb > 0 && vc > 0) return {};
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: bad shape %s=%lld %s=%lld %s=%lld", op, a, (long long)va, b,
                (long long)vb, c, (long long)vc);
  return buf;
}

inline std::string workspace(const char *op, const void *ws, int64_t have, int64_t need) {
  if (have < need) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: workspace has %lld bytes; the query asks for %lld", op,
                  (long long)have, (long long)need);
    return buf;
  }
  if (need > 0 && !ws) return std::string(op) + ": workspace is null";
  return {};
}

inline std::string linear_cross_entropy_workspace_bytes(int64_t tokens, int64_t hidden, int64_t vocab,
                                                  relat_dtype d, const int64_t *bytes) {
  const char *op = "linear_cross_entropy_workspace_bytes";
  std::string m = dims(op, "tokens", tokens, "hidden", hidden, "vocab", vocab);
  if (m.empty()) m = dtype(op, d);
  if (m.empty()) m = not_null(op, "bytes", bytes);
  return m;
}

inline std::string linear_cross_entropy(const void *h, const void *u, const int64_t *targets,
                                        const float *loss, const void *dh, int64_t tokens,
                                        int64_t hidden, int64_t vocab, relat_dtype d) {
  const char *op = "linear_cross_entropy";
  std::string m = dims(op, "tokens", tokens, "hidden", hidden, "vocab", vocab);
  if (m.empty()) m = dtype(op, d);
  if (m.empty()) m = not_null(op, "loss", loss);
  if (m.empty() && tokens > 0) m = not_null(op, "h", h);
  if (m.empty() && tokens > 0) m = not_null(op, "u", u);
  if (m.empty() && tokens > 0) m = not_null(op, "targets", targets);
  if (m.empty() && tokens > 0) m = not_null(op, "dh", dh);
  if (m.empty() && vocab > 0x7fffffffLL) m = std::string(op) + ": vocab must be below 2^31";
  return m;
}

inline std::string latent_soft_workspace_bytes(int64_t batch, int64_t hidden, int64_t vocab,
                                         relat_dtype d, const int64_t *fwd, const int64_t *bwd) {
  const char *op = "latent_soft_workspace_bytes";
  std::string m = dims(op, "batch", batch, "hidden", hidden, "vocab", vocab);
  if (m.empty()) m = dtype(op, d);
  if (m.empty()) m = not_null(op, "forward_bytes", fwd);
  if (m.empty()) m = not_null(op, "backward_bytes", bwd);
  return m;
}

inline std::string latent_soft_forward(const void *h, const void *u, const void *emb, const void *e,
                                       int64_t batch, int64_t hidden, int64_t vocab, float inv_tau,
                                       relat_dtype d) {
  const char *op = "latent_soft_forward";
  std::string m = dims(op, "batch", batch, "hidden", hidden, "vocab", vocab);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && batch > 0) m = not_null(op, "h", h);
  if (m.empty() && batch > 0) m = not_null(op, "u", u);
  if (m.empty() && batch > 0) m = not_null(op, "emb", emb);
  if (m.empty() && batch > 0) m = not_null(op, "e", e);
  if (m.empty() && !(inv_tau > 0.f && inv_tau < 3.4e38f))
    m = std::string(op) + ": inv_tau must be positive and finite";
  if (m.empty() && vocab > 0x7fffffffLL) m = std::string(op) + ": vocab must be below 2^31";
  return m;
}

inline std::string latent_soft_backward(const void *h, const void *u, const void *emb,
                                        const float *lse, const float *e32, const void *de,
                                        const void *dh, int64_t batch, int64_t hidden,
                                        int64_t vocab, float inv_tau, relat_dtype d) {
  const char *op = "latent_soft_backward";
  std::string m = dims(op, "batch", batch, "hidden", hidden, "vocab", vocab);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && batch > 0) m = not_null(op, "h", h);
  if (m.empty() && batch > 0) m = not_null(op, "u", u);
  if (m.empty() && batch > 0) m = not_null(op, "emb", emb);
  if (m.empty() && batch > 0) m = not_null(op, "lse", lse);
  if (m.empty() && batch > 0) m = not_null(op, "e32", e32);
  if (m.empty() && batch > 0) m = not_null(op, "de", de);
  if (m.empty() && batch > 0) m = not_null(op, "dh", dh);
  if (m.empty() && !(inv_tau > 0.f && inv_tau < 3.4e38f))
    m = std::string(op) + ": inv_tau must be positive and finite";
  if (m.empty() && vocab > 0x7fffffffLL) m = std::string(op) + ": vocab must be below 2^31";
  return m;
}

inline std::string row_rescale(const char *op, const void *x, const void *dy, const void *y,
                               int64_t rows, int64_t cols, float target_norm, float min_norm,
                               relat_dtype d, bool backward) {
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && rows > 0) m = not_null(op, "x", x);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "dy", dy);
  if (m.empty() && rows > 0) m = not_null(op, backward ? "dx" : "y", y);
  if (m.empty() && !(target_norm >= 0.f && target_norm < 3.4e38f))
    m = std::string(op) + ": target_norm must be finite and >= 0";
  if (m.empty() && !(min_norm > 0.f && min_norm < 3.4e38f))
    m = std::string(op) + ": min_norm must be positive and finite";
  return m;
}

// ---- RMSNorm backward, residual add + RMSNorm, SwiGLU, embedding ------------------------------

inline std::string rmsnorm_backward_workspace_bytes(int64_t rows, int64_t cols, const int64_t *bytes) {
  const char *op = "rmsnorm_backward_workspace_bytes";
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = not_null(op, "bytes", bytes);
  return m;
}

// Shared by rmsnorm_backward and add_rmsnorm_backward. `needed` is this library's workspace size
// for (rows, cols); it only matters when dweight is requested.
inline std::string rmsnorm_backward(const char *op, const void *dy, const void *ds_next,
                                    bool residual, const void *x, const void *weight,
                                    const float *rstd, const void *dx, const float *dweight,
                                    const void *workspace, int64_t workspace_bytes, int64_t needed,
                                    int64_t rows, int64_t cols, relat_dtype d) {
  const bool add = residual;
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && rows > 0) m = not_null(op, "dy", dy);
  if (m.empty() && rows > 0 && add) m = not_null(op, "ds_next", ds_next);
  if (m.empty() && rows > 0) m = not_null(op, add ? "s" : "x", x);
  if (m.empty() && rows > 0) m = not_null(op, "weight", weight);
  if (m.empty() && rows > 0) m = not_null(op, "rstd", rstd);
  if (m.empty() && rows > 0) m = not_null(op, add ? "ds" : "dx", dx);
  if (m.empty() && dweight && workspace_bytes < needed)
    m = std::string(op) + format(": workspace has %lld bytes; dweight needs %lld (rows=%lld)",
                                 workspace_bytes, needed, rows);
  if (m.empty() && dweight && needed > 0) m = not_null(op, "workspace", workspace);
  return m;
}

inline std::string add_rmsnorm_forward(const void *x, const void *r, const void *s,
                                       const void *weight, const void *y, int64_t rows,
                                       int64_t cols, float eps, relat_dtype d) {
  const char *op = "add_rmsnorm_forward";
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && rows > 0) m = not_null(op, "x", x);
  if (m.empty() && rows > 0) m = not_null(op, "r", r);
  if (m.empty() && rows > 0) m = not_null(op, "s", s);
  if (m.empty() && rows > 0) m = not_null(op, "weight", weight);
  if (m.empty() && rows > 0) m = not_null(op, "y", y);
  if (m.empty() && rows > 0 && y == s) m = std::string(op) + ": y must not alias s";
  if (m.empty() && !(eps >= 0.f)) m = std::string(op) + ": eps must be >= 0";
  return m;
}

inline std::string swiglu(const char *op, bool backward, const void *dout, const void *gate,
                          const void *up, int64_t ld_in, const void *out_or_dgate,
                          const void *dup, int64_t ld_grad, int64_t rows, int64_t cols,
                          relat_dtype d) {
  std::string m = rows_cols(op, rows, cols);
  if (m.empty()) m = dtype(op, d);
  if (m.empty() && ld_in < cols) m = std::string(op) + format(": ld_in=%lld < cols=%lld", ld_in, cols);
  if (m.empty() && backward && ld_grad < cols)
    m = std::string(op) + format(": ld_grad=%lld < cols=%lld", ld_grad, cols);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "dout", dout);
  if (m.empty() && rows > 0) m = not_null(op, "gate", gate);
  if (m.empty() && rows > 0) m = not_null(op, "up", up);
  if (m.empty() && rows > 0) m = not_null(op, backward ? "dgate" : "out", out_or_dgate);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "dup", dup);
  return m;
}

// gemv_forward / gemv_backward (relat.h): the same checks for both directions.
inline std::string gemv(const char *op, const void *x, const void *w, const void *y, int64_t rows,
                        int64_t n, int64_t k, relat_dtype d) {
  if (rows < 0 || rows > RELAT_GEMV_MAX_ROWS || n <= 0 || k <= 0)
    return std::string(op) + format(": bad shape rows=%lld n=%lld k=%lld", rows, n, k) +
           format(" (rows must be 0..%lld, n and k positive)", RELAT_GEMV_MAX_ROWS);
  std::string m = dtype(op, d);
  if (m.empty() && rows > 0) m = not_null(op, "x", x);
  if (m.empty() && rows > 0) m = not_null(op, "w", w);
  if (m.empty() && rows > 0) m = not_null(op, "y", y);
  return m;
}

// lora_segmented_forward / lora_segmented_backward (relat.h). dy, da and db only for the backward
// (backward = true); dx may be NULL. The offsets' contents are checked separately
// (lora_offsets), by the CPU library only: on cuda they live in device memory.
inline std::string lora_segmented(const char *op, bool backward, const void *x, const void *dy,
                                  const float *a, const float *b, const int64_t *offsets,
                                  int64_t segments, int64_t rows, int64_t in, int64_t out,
                                  int64_t rank, float scale, const void *y, const float *da,
                                  const float *db, relat_dtype d) {
  if (segments < 1 || segments > RELAT_LORA_MAX_SEGMENTS)
    return std::string(op) +
           format(": segments=%lld must be in [1, %lld]", segments, RELAT_LORA_MAX_SEGMENTS);
  if (rank < 1 || rank > RELAT_LORA_MAX_RANK)
    return std::string(op) + format(": rank=%lld must be in [1, %lld]", rank, RELAT_LORA_MAX_RANK);
  // in, out <= 2^24 keeps every index product of one adapter below 2^31 * 64 in int64 and the
  // CUDA grid's column chunks within its 65535 limit.
  constexpr int64_t kMaxWidth = int64_t(1) << 24;
  if (rows < 0 || rows > kAttentionMaxRows || in < 1 || in > kMaxWidth || out < 1 ||
      out > kMaxWidth)
    return std::string(op) + format(": bad shape rows=%lld in=%lld out=%lld", rows, in, out) +
           format(" (rows must be >= 0, in and out in [1, %lld])", kMaxWidth);
  std::string m = dtype(op, d);
  if (m.empty() && !std::isfinite(scale)) m = std::string(op) + ": scale must be finite";
  if (m.empty() && rows > 0) m = not_null(op, "x", x);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "dy", dy);
  if (m.empty() && rows > 0) m = not_null(op, "a", a);
  if (m.empty() && rows > 0) m = not_null(op, "b", b);
  if (m.empty() && rows > 0) m = not_null(op, "offsets", offsets);
  if (m.empty() && rows > 0 && !backward) m = not_null(op, "y", y);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "da", da);
  if (m.empty() && rows > 0 && backward) m = not_null(op, "db", db);
  return m;
}

// The offsets themselves (host memory): offsets[0] = 0, nondecreasing, offsets[segments] = rows.
inline std::string lora_offsets(const char *op, const int64_t *offsets, int64_t segments,
                                int64_t rows) {
  if (offsets[0] != 0)
    return std::string(op) + format(": offsets[0] = %lld, must be 0", offsets[0]);
  for (int64_t s = 0; s < segments; ++s)
    if (offsets[s + 1] < offsets[s] || offsets[s + 1] > rows)
      return std::string(op) + format(": offsets[%lld] = %lld", s + 1, offsets[s + 1]) +
             format(" is below offsets[%lld] = %lld or above rows", s, offsets[s]) +
             format(" = %lld (offsets must be nondecreasing, from 0 to rows)", rows);
  if (offsets[segments] != rows)
    return std::string(op) + format(": offsets[%lld] = %lld, must equal rows = %lld", segments,
                                    offsets[segments], rows);
  return {};
}

inline std::string embedding_forward(const void *ids, relat_index_dtype id_dtype, int64_t n,
                                     const void *table, int64_t vocab, int64_t dim,
                                     const void *out, relat_dtype d) {
  const char *op = "embedding_forward";
  if (n < 0 || vocab <= 0 || dim <= 0)
    return std::string(op) + format(": bad shape n=%lld vocab=%lld dim=%lld", n, vocab, dim);
  std::string m = dtype(op, d);
  if (m.empty() && id_dtype != RELAT_I32 && id_dtype != RELAT_I64)
    m = std::string(op) + format(": unknown index dtype tag %lld", id_dtype);
  if (m.empty() && n > 0) m = not_null(op, "ids", ids);
  if (m.empty() && n > 0) m = not_null(op, "table", table);
  if (m.empty() && n > 0) m = not_null(op, "out", out);
  return m;
}

inline std::string embedding_bad_id(int64_t position, int64_t id, int64_t vocab) {
  return format("embedding_forward: ids[%lld] = %lld is out of range [0, %lld)", position, id, vocab);
}

inline std::string rope(const char *op, const void *q, const void *k, const void *q_out,
                        const void *k_out, const int64_t *positions, const float *inv_freq,
                        int64_t tokens, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                        int64_t ldq, int64_t ldk, relat_dtype d) {
  std::string m = dtype(op, d);
  if (!m.empty()) return m;
  if (tokens < 0 || q_heads < 0 || kv_heads < 0)
    return std::string(op) + format(": bad shape tokens=%lld q_heads=%lld kv_heads=%lld", tokens,
                                    q_heads, kv_heads);
  if (head_dim < 2 || head_dim > 1024 || head_dim % 2 != 0)
    return std::string(op) + format(": head_dim must be even and in [2, 1024], got %lld", head_dim);
  if (q_heads > 0 && ldq < q_heads * head_dim)
    return std::string(op) + format(": ldq=%lld is less than q_heads*head_dim=%lld", ldq,
                                    q_heads * head_dim);
  if (kv_heads > 0 && ldk < kv_heads * head_dim)
    return std::string(op) + format(": ldk=%lld is less than kv_heads*head_dim=%lld", ldk,
                                    kv_heads * head_dim);
  if (tokens == 0 || q_heads + kv_heads == 0) return {};
  if (q_heads > 0 && (m = not_null(op, "q", q)).size()) return m;
  if (q_heads > 0 && (m = not_null(op, "q_out", q_out)).size()) return m;
  if (kv_heads > 0 && (m = not_null(op, "k", k)).size()) return m;
  if (kv_heads > 0 && (m = not_null(op, "k_out", k_out)).size()) return m;
  if ((m = not_null(op, "positions", positions)).size()) return m;
  return not_null(op, "inv_freq", inv_freq);
}

inline std::string adamw_step(void *const *params, const void *const *grads,
                              float *const *exp_avg, float *const *exp_avg_sq,
                              const int64_t *numels, int64_t count, relat_dtype param_dtype,
                              relat_dtype grad_dtype, double lr, double beta1, double beta2,
                              double eps, double weight_decay, int64_t step) {
  const char *op = "adamw_step";
  std::string m = dtype(op, param_dtype);
  if (m.empty()) m = dtype(op, grad_dtype);
  if (!m.empty()) return m;
  if (grad_dtype != param_dtype && grad_dtype != RELAT_F32)
    return std::string(op) + ": grads must have the params' dtype or fp32";
  if (count < 0) return std::string(op) + format(": bad count %lld", count);
  if (step < 1) return std::string(op) + format(": step must be >= 1, got %lld", step);
  if (!(lr >= 0 && lr < 1e30)) {
    char got[32];  // format() takes integers
    std::snprintf(got, sizeof got, "%g", lr);
    return std::string(op) + ": lr must be in [0, 1e30), got " + got;
  }
  if (!(beta1 >= 0 && beta1 < 1)) return std::string(op) + ": beta1 must be in [0, 1)";
  if (!(beta2 >= 0 && beta2 < 1)) return std::string(op) + ": beta2 must be in [0, 1)";
  if (!(eps >= 0 && eps < 1e30)) return std::string(op) + ": eps must be finite and >= 0";
  if (!(weight_decay >= 0 && weight_decay < 1e30))
    return std::string(op) + ": weight_decay must be finite and >= 0";
  if (count == 0) return {};
  if ((m = not_null(op, "params", params)).size()) return m;
  if ((m = not_null(op, "grads", grads)).size()) return m;
  if ((m = not_null(op, "exp_avg", exp_avg)).size()) return m;
  if ((m = not_null(op, "exp_avg_sq", exp_avg_sq)).size()) return m;
  if ((m = not_null(op, "numels", numels)).size()) return m;
  for (int64_t j = 0; j < count; ++j) {
    if (numels[j] < 0) return std::string(op) + format(": numels[%lld] = %lld", j, numels[j]);
    if (numels[j] == 0) continue;
    if (!params[j]) return std::string(op) + format(": params[%lld] is null", j);
    if (!grads[j]) return std::string(op) + format(": grads[%lld] is null", j);
    if (!exp_avg[j]) return std::string(op) + format(": exp_avg[%lld] is null", j);
    if (!exp_avg_sq[j]) return std::string(op) + format(": exp_avg_sq[%lld] is null", j);
  }
  return {};
}

// Largest vocabulary the sampler takes: token masses are integers below 2^40 and must sum in 64 bits.
constexpr int64_t kSampleMaxVocab = int64_t(1) << 23;

inline std::string sample_shape(const char *op, int64_t rows, int64_t vocab) {
  if (rows < 0 || vocab < 1 || vocab > kSampleMaxVocab)
    return std::string(op) + format(": bad shape rows=%lld vocab=%lld (vocab must be in [1, %lld])",
                                    rows, vocab, kSampleMaxVocab);
  return {};
}

inline std::string sample(const void *logits, int64_t rows, int64_t vocab, int64_t ld,
                          float temperature, float top_p, const int64_t *out, relat_dtype d) {
  const char *op = "sample";
  std::string m = dtype(op, d);
  if (m.empty()) m = sample_shape(op, rows, vocab);
  if (!m.empty()) return m;
  if (ld < vocab) return std::string(op) + format(": ld=%lld is less than vocab=%lld", ld, vocab);
  if (temperature != temperature) return std::string(op) + ": temperature is NaN";
  if (!(top_p > 0)) return std::string(op) + ": top_p must be > 0 (>= 1 keeps everything)";
  if (rows == 0) return {};
  if ((m = not_null(op, "logits", logits)).size()) return m;
  return not_null(op, "out", out);
}

}  // namespace relat::validate
