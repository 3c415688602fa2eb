// Shape arithmetic shared by the attention kernels of both libraries (native/src/attention.cpp,
// native/src/decode_attention.cpp, kernels/attention.cu, kernels/decode_attention.cu): how decode
// splits a sequence and how much workspace each op needs at the least. Host code only.
#pragma once

#include <cstdint>

#include "relat/relat.h"

namespace relat::plan {

// Decode: the sequence is cut into splits of decode_split_len positions (a multiple of 128, at
// least 128), aiming at kDecodeTargetSplits splits, so that a 32k cache yields 64 splits of 512
// positions per (sequence, KV head) and a short one a single split.
constexpr int64_t kDecodeSplitQuantum = 128;
constexpr int64_t kDecodeTargetSplits = 64;

inline int64_t decode_split_len(int64_t max_len) {
  int64_t per = (max_len + kDecodeTargetSplits - 1) / kDecodeTargetSplits;
  per = (per + kDecodeSplitQuantum - 1) / kDecodeSplitQuantum * kDecodeSplitQuantum;
  return per < kDecodeSplitQuantum ? kDecodeSplitQuantum : per;
}

inline int64_t decode_num_splits(int64_t max_len) {
  if (max_len <= 0) return 0;
  const int64_t len = decode_split_len(max_len);
  return (max_len + len - 1) / len;
}

// What both libraries' decode does for one call: the split, and the workspace it needs, laid out
// (fp32) as m[batch][hq][num_splits], l[batch][hq][num_splits], acc[batch][hq][num_splits][D].
struct DecodePlan {
  int64_t split_len, num_splits, workspace_bytes;
};

inline DecodePlan decode_plan(int64_t batch, int64_t hq, int64_t head_dim, int64_t max_len) {
  const int64_t num_splits = decode_num_splits(max_len);
  return {decode_split_len(max_len), num_splits, 4 * batch * hq * num_splits * (head_dim + 2)};
}

// Attention backward, the least both libraries accept: delta = rowsum(dout * out) per (query,
// head), then an fp32 dq accumulator unless dq itself is fp32.
inline int64_t attention_backward_min_workspace_bytes(int64_t tq, int64_t hq, int64_t head_dim,
                                                      relat_dtype dtype) {
  return 4 * (tq * hq + (dtype == RELAT_F32 ? 0 : tq * hq * head_dim));
}

}  // namespace relat::plan
