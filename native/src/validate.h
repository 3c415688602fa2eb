// Argument checks shared by the CPU twins and the CUDA wrappers, so both libraries reject exactly
// the same calls with the same message. Each returns "" when the call is valid.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

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

inline std::string linear_cross_entropy_workspace(int64_t tokens, int64_t hidden, int64_t vocab,
                                                  relat_dtype d, const int64_t *bytes) {
  const char *op = "linear_cross_entropy_workspace";
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

inline std::string latent_soft_workspace(int64_t batch, int64_t hidden, int64_t vocab,
                                         relat_dtype d, const int64_t *fwd, const int64_t *bwd) {
  const char *op = "latent_soft_workspace";
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

}  // namespace relat::validate
