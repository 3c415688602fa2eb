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

}  // namespace relat::validate
