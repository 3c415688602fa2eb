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
  if (!(lr >= 0 && lr < 1e30)) return std::string(op) + ": lr must be finite and >= 0";
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
