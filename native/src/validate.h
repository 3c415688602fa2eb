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

inline std::string rmsnorm_backward_workspace_size(int64_t rows, int64_t cols, const int64_t *bytes) {
  const char *op = "rmsnorm_backward_workspace_size";
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

}  // namespace relat::validate
