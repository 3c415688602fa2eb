// Fused linear cross-entropy, CPU twin of kernels/linear_cross_entropy.cu.
//
// What is fused: the LM head GEMM (logits = H U^T), the log-sum-exp over the vocabulary, the NLL
// of the targets, the mean over counted positions, and the gradient GEMM dH = (softmax - onehot) U
// / count. The [tokens, vocab] logits never exist: the vocabulary is swept in tiles of vt rows of
// U, and because the loss ends the graph the gradient is formed during the same sweep.
//
// Scheme: ONE pass over V per block of rows, with online rescaling (flash-attention style). For a
// block of rows and a tile of U:
//   S^T = U_tile H_blk^T                     (product 1, [vt x Tb], fp32)
//   m' = max(m, max_j S), alpha = exp(m - m'), P^T = exp(S^T - m'), l = alpha l + sum_j P
//   acc = alpha * acc + P U_tile             (product 2, [Tb x d], fp32; alpha in the C load)
// and at the end, per row: lse = m + log l, loss = lse - logit[target],
//   dH = (acc / l + (p_t - 1) U[target]) / count, p_t = exp(logit[target] - lse),
// where the target's own column is left out of P, so that p_t - 1 is formed in fp32 rather than
// as the difference of two nearly equal terms when the prediction is confident.
// FLOPs: 2 T V d (product 1) + 2 T V d (product 2) = exactly the two GEMMs of the unfused math
// (logits and dH); no logit is recomputed. Extra: T V exps and the per-row scalar updates.
// Bytes (floor): U is read once per block of rows: (T / Tb) V d sizeof(T), H read once, dH written
// once. Arithmetic intensity per U byte is ~4 Tb FLOPs, so the kernel is compute-bound.
//
// Layout of the work: counted rows are compacted first (ignored positions cost nothing), dealt in
// whole 16-row panels into blocks of at most Tb <= 96 rows, as many blocks as a multiple of the
// worker count so every worker gets the same number of rows (balanced_blocks); when there are fewer
// blocks than threads the vocabulary is also split into S ranges. Each (block, range) item owns
// fp32 partials m, l, acc in the workspace; they are merged per row afterwards. Extra memory:
// max(T, workers Tb) x d fp32 for the partials, plus per worker a packed H block (Tb x d), a packed
// U tile (vt x d, ~1 MiB: vt = 192 at d = 1024, 60 at d = 4096) and the S^T tile (vt x Tb), all
// fp32: O(T d + workers (Tb + vt) d), never O(T V). The workers are the OpenMP threads, fewer when
// needed to keep the workspace within 2 T d fp32 + 8 MiB (on many-core hosts at large d). The exact
// size is linear_cross_entropy_workspace_bytes (e.g. 14.6 MB at T = 512, d = 4096 with 2 threads).
//
// The GEMMs use a 6x16 register-blocked micro-kernel (12 accumulators) written with 8-lane vectors:
// AVX2/FMA or AVX-512VL ymm code through RELAT_VECTOR_CLONES, SSE2 otherwise. Product 1 broadcasts
// U rows and streams H^T panels (H packed once per block); product 2 broadcasts P^T (which is the
// layout product 1 writes, so P needs no transposition) and streams U rows, which are row-major in
// the packed tile: no operand is ever transposed per tile. The packed tile's row stride is padded
// so rows do not alias in L1 when d is a multiple of 1024.
//
// With OpenBLAS in the process (always in the Java library: libtorch links it; relat.h,
// relat_cpu_set_gemm) the two products are instead cblas_sgemm calls over all counted rows at once,
// S = Hc U_tile^T [n x nv] then acc += P U_tile [n x d], with vt ~4 MiB / (4 tokens): each call is
// a large GEMM that OpenBLAS threads and runs at its full rate (the built-in micro-kernels reach
// ~3/4 of it on AVX2). Between the two, one OpenMP pass per row does the online softmax; a row's
// acc is rescaled only when its running max grows (a few times per row over the sweep), so the
// second product needs no per-row alpha and runs with beta = 1. Same math, same FLOPs, same
// one-pass structure. Extra memory: Hc (the counted rows in fp32) and acc, n x d fp32 each, the S
// tile (tokens x vt) and, unless the storage is fp32, the U tile in fp32 (vt x d): 21 MB at
// T = 512, d = 4096 in fp32.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cpu_common.h"
#include "cpu_gemm.h"
#include "cpu_simd.h"
#include "validate.h"

namespace relat::cpu {
namespace {

constexpr int64_t kMR = 6;        // micro-tile rows
constexpr int64_t kNR = 16;       // micro-tile columns (two 8-lane vectors)
constexpr int64_t kVtMax = 192;   // vocabulary rows per tile at most (multiple of kMR)
constexpr int64_t kVtMin = 48;
constexpr int64_t kTileBytes = int64_t(1) << 20;  // packed U tile per thread: about 1 MiB
constexpr int64_t kKc = 256;      // depth block of product 1
constexpr int64_t kTbMax = 96;    // rows per block (multiple of kNR)
int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

// The plan depends only on the shape and the thread count (the number of counted rows n <= tokens
// is known only at run time; the same plan serves every n).
//  - vt: U tile height, so that a packed tile is ~1 MiB (192 rows at d = 1024, 60 at d = 4096);
//  - tb: rows per block; blocks = ceil(tokens / tb) >= workers when tokens allow;
//  - workers: threads used, at most the OpenMP count, fewer when the workspace would otherwise
//    exceed the budget 2 tokens hidden fp32 + 8 MiB (every worker holds a packed H block and U tile);
//  - slots: fp32 partial (m, l, acc) sets; at run time a block is split over vocabulary ranges
//    when there are fewer blocks than workers, with blocks x ranges <= slots.
struct Plan {
  int64_t vt = 0, tb = 0, tb6 = 0, ldp = 0, ldu = 0, workers = 0, slots = 0;
  // byte offsets and sizes
  int64_t rows = 0, tgt = 0, slot_base = 0, slot_bytes = 0, scratch = 0, scratch_bytes = 0;
  int64_t total = 0;
};

Plan make_plan_for(int64_t tokens, int64_t hidden, int workers) {
  Plan p;
  p.workers = workers;
  p.ldu = round_up(hidden, kNR) + kNR;  // padded stride: rows do not alias in L1 for d = 1024 k
  p.vt = std::clamp<int64_t>(kTileBytes / (p.ldu * 4) / kMR * kMR, kVtMin, kVtMax);
  const int64_t r0 = ceil_div(tokens, kTbMax);
  if (r0 >= workers) {
    p.tb = round_up(ceil_div(tokens, round_up(r0, workers)), kNR);
  } else {
    p.tb = std::max<int64_t>(kNR, ceil_div(tokens, workers) / kNR * kNR);
  }
  // At run time the counted rows are dealt into a multiple of `workers` blocks (balanced_blocks):
  // at most round_up(ceil(tokens / tb), workers) of them.
  p.slots = round_up(ceil_div(tokens, p.tb), workers);
  p.tb6 = round_up(p.tb, kMR);
  p.ldp = p.tb + 8;  // >= tb6; columns past tb stay zero
  WorkspaceCarver w;
  p.rows = w.take(tokens * int64_t(sizeof(int64_t)));
  p.tgt = w.take(tokens * int64_t(sizeof(float)));
  // Per slot: m[tb6], l[tb6], acc[tb6 x hidden].
  p.slot_bytes = round_up((2 * p.tb6 + p.tb6 * hidden) * 4, kAlign);
  p.slot_base = w.take(p.slots * p.slot_bytes);
  // Per worker: packed H block, packed U tile, S^T tile, alpha.
  p.scratch_bytes = round_up(p.tb * hidden * 4, kAlign) + round_up(p.vt * p.ldu * 4, kAlign) +
                    round_up(p.vt * p.ldp * 4, kAlign) + round_up(p.tb6 * 4, kAlign);
  p.scratch = w.take(workers * p.scratch_bytes);
  p.total = w.total();
  return p;
}

Plan make_plan(int64_t tokens, int64_t hidden, int threads) {
  const int64_t budget = 2 * tokens * hidden * 4 + (int64_t(8) << 20);
  Plan p = make_plan_for(tokens, hidden, threads);
  for (int w = threads - 1; w >= 1 && p.total > budget; --w) p = make_plan_for(tokens, hidden, w);
  return p;
}

// ---- OpenBLAS path: plan -----------------------------------------------------------------------

constexpr int64_t kBlasTileBytes = int64_t(4) << 20;  // S tile + converted U tile

struct BlasPlan {
  int64_t vt = 0, ld_ml = 0;  // vocabulary rows per tile; stride between m, l and acc
  int64_t rows = 0, tgt = 0, slot = 0, hc = 0, st = 0, ut = 0, total = 0;  // byte offsets, size
};

BlasPlan make_blas_plan(int64_t tokens, int64_t hidden, int64_t vocab, bool convert_u) {
  BlasPlan p;
  const int64_t per_vocab_row = 4 * tokens + (convert_u ? 4 * hidden : 0);
  p.vt = std::min(vocab, std::clamp<int64_t>(kBlasTileBytes / per_vocab_row / 64 * 64, 64, 4096));
  p.ld_ml = round_up(tokens, 16);
  WorkspaceCarver w;
  p.rows = w.take(tokens * int64_t(sizeof(int64_t)));
  p.tgt = w.take(tokens * 4);
  p.slot = w.take((2 * p.ld_ml + tokens * hidden) * 4);  // m, l, acc: finish_row's slot layout
  p.hc = w.take(tokens * hidden * 4);
  p.st = w.take(tokens * p.vt * 4);
  p.ut = w.take(convert_u ? p.vt * hidden * 4 : 0);
  p.total = w.total();
  return p;
}

// OpenBLAS takes int sizes and leading dimensions.
bool blas_fits(int64_t tokens, int64_t hidden) {
  return tokens <= std::numeric_limits<int>::max() && hidden <= std::numeric_limits<int>::max();
}

// convert_u: the storage is not fp32, so the OpenBLAS path converts each U tile.
int64_t workspace_bytes(int64_t tokens, int64_t hidden, int64_t vocab, bool convert_u,
                        int threads) {
  if (tokens == 0) return 0;
  if (sgemm_in_use() && blas_fits(tokens, hidden))
    return make_blas_plan(tokens, hidden, vocab, convert_u).total;
  return make_plan(tokens, hidden, threads).total;
}

// Row blocks for n counted rows: whole 16-row panels dealt as evenly as possible into nb blocks
// (no block over tb rows), nb a multiple of the worker count when there are enough panels, so the
// workers get equal shares: 512 rows at tb = 96 and 2 workers are 96 96 80 80 80 80 rather than
// 96 x 5 + 32. Block b starts at row start(b).
struct Blocks {
  int64_t nb = 0, base = 0, extra = 0;  // blocks; panels per block; blocks with one panel more
  int64_t start(int64_t b) const { return (b * base + std::min(b, extra)) * kNR; }
};

Blocks balanced_blocks(int64_t n, const Plan &p) {
  Blocks bl;
  const int64_t panels = ceil_div(n, kNR), per_block = p.tb / kNR;
  bl.nb = std::min(panels, round_up(ceil_div(panels, per_block), int64_t(p.workers)));
  bl.base = panels / bl.nb;
  bl.extra = panels % bl.nb;
  return bl;
}

// ---- micro-kernels ----------------------------------------------------------------------------

// Product 1: C[r][0..15] (+)= sum_k a[r][k] * b[k][0..15] for the 6 rows a[0..5] (U tile rows)
// and the packed panel b (16 H rows, k-major). C rows are S^T rows (ld = ldc).
RELAT_INLINE void micro_p1(const float *a0, const float *a1, const float *a2, const float *a3,
                           const float *a4, const float *a5, const float *b, int64_t kc, float *c,
                           int64_t ldc, bool accumulate) {
  v8f c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {}, c40 = {},
      c41 = {}, c50 = {}, c51 = {};
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const v8f b0 = load8(b + k * kNR), b1 = load8(b + k * kNR + 8);
    c00 += a0[k] * b0;
    c01 += a0[k] * b1;
    c10 += a1[k] * b0;
    c11 += a1[k] * b1;
    c20 += a2[k] * b0;
    c21 += a2[k] * b1;
    c30 += a3[k] * b0;
    c31 += a3[k] * b1;
    c40 += a4[k] * b0;
    c41 += a4[k] * b1;
    c50 += a5[k] * b0;
    c51 += a5[k] * b1;
  }
  if (accumulate) {
    c00 += load8(c + 0 * ldc), c01 += load8(c + 0 * ldc + 8);
    c10 += load8(c + 1 * ldc), c11 += load8(c + 1 * ldc + 8);
    c20 += load8(c + 2 * ldc), c21 += load8(c + 2 * ldc + 8);
    c30 += load8(c + 3 * ldc), c31 += load8(c + 3 * ldc + 8);
    c40 += load8(c + 4 * ldc), c41 += load8(c + 4 * ldc + 8);
    c50 += load8(c + 5 * ldc), c51 += load8(c + 5 * ldc + 8);
  }
  store8(c + 0 * ldc, c00), store8(c + 0 * ldc + 8, c01);
  store8(c + 1 * ldc, c10), store8(c + 1 * ldc + 8, c11);
  store8(c + 2 * ldc, c20), store8(c + 2 * ldc + 8, c21);
  store8(c + 3 * ldc, c30), store8(c + 3 * ldc + 8, c31);
  store8(c + 4 * ldc, c40), store8(c + 4 * ldc + 8, c41);
  store8(c + 5 * ldc, c50), store8(c + 5 * ldc + 8, c51);
}

// Product 2: C[r][0..15] = alpha[r] * C[r][..] + sum_j a[j][r] * b[j][0..15] for 6 rows r, where
// a = P^T (ld lda, 6 consecutive rows of H per j) and b = U tile rows (ld ldb). With `first`, C is
// not read (it may hold anything). C is acc, ld ldc.
RELAT_INLINE void micro_p2(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kn,
                           float *c, int64_t ldc, const float *alpha, bool first) {
  v8f c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {}, c40 = {},
      c41 = {}, c50 = {}, c51 = {};
  if (!first) {
    c00 = alpha[0] * load8(c + 0 * ldc), c01 = alpha[0] * load8(c + 0 * ldc + 8);
    c10 = alpha[1] * load8(c + 1 * ldc), c11 = alpha[1] * load8(c + 1 * ldc + 8);
    c20 = alpha[2] * load8(c + 2 * ldc), c21 = alpha[2] * load8(c + 2 * ldc + 8);
    c30 = alpha[3] * load8(c + 3 * ldc), c31 = alpha[3] * load8(c + 3 * ldc + 8);
    c40 = alpha[4] * load8(c + 4 * ldc), c41 = alpha[4] * load8(c + 4 * ldc + 8);
    c50 = alpha[5] * load8(c + 5 * ldc), c51 = alpha[5] * load8(c + 5 * ldc + 8);
  }
#pragma GCC unroll 4
  for (int64_t j = 0; j < kn; ++j) {
    const float *aj = a + j * lda;
    const v8f b0 = load8(b + j * ldb), b1 = load8(b + j * ldb + 8);
    c00 += aj[0] * b0;
    c01 += aj[0] * b1;
    c10 += aj[1] * b0;
    c11 += aj[1] * b1;
    c20 += aj[2] * b0;
    c21 += aj[2] * b1;
    c30 += aj[3] * b0;
    c31 += aj[3] * b1;
    c40 += aj[4] * b0;
    c41 += aj[4] * b1;
    c50 += aj[5] * b0;
    c51 += aj[5] * b1;
  }
  store8(c + 0 * ldc, c00), store8(c + 0 * ldc + 8, c01);
  store8(c + 1 * ldc, c10), store8(c + 1 * ldc + 8, c11);
  store8(c + 2 * ldc, c20), store8(c + 2 * ldc + 8, c21);
  store8(c + 3 * ldc, c30), store8(c + 3 * ldc + 8, c31);
  store8(c + 4 * ldc, c40), store8(c + 4 * ldc + 8, c41);
  store8(c + 5 * ldc, c50), store8(c + 5 * ldc + 8, c51);
}

// ---- one work item: a block of rows against a range of the vocabulary -----------------------

struct Item {
  const int64_t *rows;  // original row index of each compact row of the block
  int64_t nrows;        // counted rows in this block (<= tb)
  int64_t v_begin, v_end;
  float *m, *l, *acc;   // the item's slot
  float *tgt;           // target logit per compact row of the block
};

struct Scratch {
  float *hp, *ut, *st, *alpha;
};

template <class T>
RELAT_VECTOR_CLONES void run_item(const T *h, const T *u, const int64_t *targets,
                                  int64_t hidden, const Plan &pl, const Item &it,
                                  const Scratch &w) {
  const int64_t tb = pl.tb, ldp = pl.ldp, ldu = pl.ldu, d = hidden, vt = pl.vt;
  // Only the block's own panels are computed: tbe rows (a multiple of 16, <= tb), tb6 for product 2.
  const int64_t tbe = round_up(it.nrows, kNR), tb6 = round_up(tbe, kMR);

  // Pack the H block as k-major panels of 16 rows: hp[kb][panel][k][16], zero rows past nrows.
  for (int64_t k0 = 0; k0 < d; k0 += kKc) {
    const int64_t kc = std::min(kKc, d - k0);
    float *blk = w.hp + k0 * tb;
    for (int64_t p = 0; p < tbe / kNR; ++p) {
      float *panel = blk + p * kc * kNR;
      for (int64_t i = 0; i < kNR; ++i) {
        const int64_t r = p * kNR + i;
        if (r < it.nrows) {
          const T *src = h + it.rows[r] * d + k0;
          for (int64_t k = 0; k < kc; ++k) panel[k * kNR + i] = to_f32(src[k]);
        } else {
          for (int64_t k = 0; k < kc; ++k) panel[k * kNR + i] = 0.f;
        }
      }
    }
  }
  // P^T columns past tbe are read by the last 6-row sliver of product 2: keep them zero.
  for (int64_t j = 0; j < vt; ++j)
    for (int64_t i = tbe; i < ldp; ++i) w.st[j * ldp + i] = 0.f;
  for (int64_t i = tbe; i < tb6; ++i) it.m[i] = 0.f, it.l[i] = 0.f, w.alpha[i] = 0.f;

  bool first = true;
  for (int64_t v0 = it.v_begin; v0 < it.v_end; v0 += vt) {
    const int64_t nv = std::min(vt, it.v_end - v0);

    // Pack the U tile as fp32 rows with a padded stride; columns d..ldu are zero.
    for (int64_t j = 0; j < nv; ++j) {
      float *dst = w.ut + j * ldu;
      to_f32_row(u + (v0 + j) * d, dst, d);
      for (int64_t k = d; k < ldu; ++k) dst[k] = 0.f;
    }

    // Product 1: S^T[j][i] = U[v0 + j] . H[i] for j < nv (rows of the last sliver past nv repeat
    // row nv - 1 and are never read), i < tbe.
    for (int64_t k0 = 0; k0 < d; k0 += kKc) {
      const int64_t kc = std::min(kKc, d - k0);
      const float *blk = w.hp + k0 * tb;
      for (int64_t p = 0; p < tbe / kNR; ++p) {
        const float *panel = blk + p * kc * kNR;
        for (int64_t j0 = 0; j0 < nv; j0 += kMR) {
          const float *a[kMR];
          for (int64_t r = 0; r < kMR; ++r) a[r] = w.ut + std::min(j0 + r, nv - 1) * ldu + k0;
          micro_p1(a[0], a[1], a[2], a[3], a[4], a[5], panel, kc, w.st + j0 * ldp + p * kNR, ldp,
                   k0 > 0);
        }
      }
    }

    // Target logits of this tile, before the exponentials overwrite S.
    for (int64_t i = 0; i < it.nrows; ++i) {
      const int64_t t = targets[it.rows[i]];
      if (t >= v0 && t < v0 + nv) it.tgt[i] = w.st[(t - v0) * ldp + i];
    }

    // Online softmax over the tile, 8 rows of H at a time: new max, alpha, P^T = exp(S^T - m).
    for (int64_t i = 0; i < tbe; i += 8) {
      v8f mx = load8(w.st + i);
      for (int64_t j = 1; j < nv; ++j) mx = max8(mx, load8(w.st + j * ldp + i));
      const v8f m_old = load8(it.m + i);
      const v8f m_new = first ? mx : max8(m_old, mx);
      const v8f alpha = first ? v8f{} : exp8(m_old - m_new);
      v8f sum = {};
      for (int64_t j = 0; j < nv; ++j) {
        const v8f p = exp8(load8(w.st + j * ldp + i) - m_new);
        store8(w.st + j * ldp + i, p);
        sum += p;
      }
      store8(it.m + i, m_new);
      store8(it.l + i, first ? sum : alpha * load8(it.l + i) + sum);
      store8(w.alpha + i, alpha);
    }
    // The target's own term leaves the accumulator: its gradient weight p_t - 1 is formed in fp32 at
    // the end from the saved logit (acc / l - U[t] would cancel when p_t is close to 1).
    for (int64_t i = 0; i < it.nrows; ++i) {
      const int64_t t = targets[it.rows[i]];
      if (t >= v0 && t < v0 + nv) w.st[(t - v0) * ldp + i] = 0.f;
    }

    // Product 2: acc[i][n] = alpha[i] acc[i][n] + sum_j P^T[j][i] U[v0 + j][n].
    for (int64_t n0 = 0; n0 < d; n0 += kNR) {
      const float *b = w.ut + n0;
      if (n0 + kNR <= d) {
        for (int64_t i0 = 0; i0 < tb6; i0 += kMR)
          micro_p2(w.st + i0, ldp, b, ldu, nv, it.acc + i0 * d + n0, d, w.alpha + i0, first);
      } else {  // last, partial panel: go through a 6x16 buffer
        const int64_t nc = d - n0;
        float c[kMR * kNR];
        for (int64_t i0 = 0; i0 < tb6; i0 += kMR) {
          for (int64_t r = 0; r < kMR; ++r)
            for (int64_t q = 0; q < kNR; ++q) c[r * kNR + q] = (!first && q < nc) ? it.acc[(i0 + r) * d + n0 + q] : 0.f;
          micro_p2(w.st + i0, ldp, b, ldu, nv, c, kNR, w.alpha + i0, first);
          for (int64_t r = 0; r < kMR; ++r)
            for (int64_t q = 0; q < nc; ++q) it.acc[(i0 + r) * d + n0 + q] = c[r * kNR + q];
        }
      }
    }
    first = false;
  }
}

// Merges the partials of one counted row over the vocabulary ranges and writes its dH row.
// slot0 is the row's block slot of range 0; ranges follow every `stride` floats. The merged acc is
// built in place in range 0's acc row. Returns the row's loss (NaN for an out-of-range target).
template <class T>
RELAT_VECTOR_CLONES float finish_row(const T *u, T *dh_row, int64_t target, int64_t vocab,
                                     int64_t hidden, float *slot0, int64_t stride, int64_t splits,
                                     int64_t tb6, int64_t i, float tgt_logit, float inv_count) {
  auto m = [&](int64_t s) { return slot0[s * stride + i]; };
  auto l = [&](int64_t s) { return slot0[s * stride + tb6 + i]; };
  auto acc = [&](int64_t s) { return slot0 + s * stride + 2 * tb6 + i * hidden; };
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t s = 0; s < splits; ++s) mx = std::max(mx, m(s));
  float lsum = 0.f;
  for (int64_t s = 0; s < splits; ++s) lsum += l(s) * exp_f32(m(s) - mx);
  const float lse = mx + std::log(lsum);
  if (!(target >= 0 && target < vocab)) {
    const T nan = from_f32<T>(std::numeric_limits<float>::quiet_NaN());
    for (int64_t k = 0; k < hidden; ++k) dh_row[k] = nan;
    return std::numeric_limits<float>::quiet_NaN();
  }
  float *a0 = acc(0);
  const float w0 = exp_f32(m(0) - mx) / lsum;
  for (int64_t k = 0; k < hidden; ++k) a0[k] *= w0;
  for (int64_t s = 1; s < splits; ++s) {
    const float ws = exp_f32(m(s) - mx) / lsum;
    const float *as = acc(s);
    for (int64_t k = 0; k < hidden; ++k) a0[k] += ws * as[k];
  }
  // acc holds every vocabulary row but the target: dH = acc / l + (p_t - 1) U[t].
  const float wt = exp_f32(tgt_logit - lse) - 1.f;
  const T *ut = u + target * hidden;
  for (int64_t k = 0; k < hidden; ++k)
    dh_row[k] = from_f32<T>((a0[k] + wt * to_f32(ut[k])) * inv_count);
  return lse - tgt_logit;
}

// Lists the counted rows in `rows`, zeroes the gradient rows of the ignored ones, sets the target
// logits to NaN (a target outside the vocabulary is never found) and returns the count.
template <class T>
int64_t compact_counted(const int64_t *targets, int64_t ignore_index, T *dh, int64_t tokens,
                        int64_t d, int64_t *rows, float *tgt) {
  int64_t n = 0;
  for (int64_t t = 0; t < tokens; ++t)
    if (targets[t] != ignore_index) rows[n++] = t;
#pragma omp parallel for schedule(static) if (tokens * d >= kParallelMinElements)
  for (int64_t t = 0; t < tokens; ++t)
    if (targets[t] == ignore_index)
      for (int64_t k = 0; k < d; ++k) dh[t * d + k] = from_f32<T>(0.f);
  for (int64_t i = 0; i < n; ++i) tgt[i] = std::numeric_limits<float>::quiet_NaN();
  return n;
}

// The mean of the row losses, summed in order (NaN for no counted row, as libtorch's mean).
float mean_loss(const float *row_loss, int64_t n) {
  double total = 0.0;
  for (int64_t c = 0; c < n; ++c) total += row_loss[c];
  return float(total / double(n));
}

template <class T>
relat_status run(const T *h, const T *u, const int64_t *targets, int64_t ignore_index, float *loss,
                 T *dh, int64_t tokens, int64_t hidden, int64_t vocab, char *ws, const Plan &p) {
  const int64_t d = hidden;
  int64_t *rows = reinterpret_cast<int64_t *>(ws + p.rows);
  float *tgt = reinterpret_cast<float *>(ws + p.tgt);
  const int64_t n = compact_counted(targets, ignore_index, dh, tokens, d, rows, tgt);
  if (n == 0) {
    *loss = std::numeric_limits<float>::quiet_NaN();
    return RELAT_OK;
  }

  // Work items: balanced blocks of at most tb counted rows, each over `splits` vocabulary ranges of
  // whole tiles; ranges only when there are fewer blocks than workers (blocks x splits <= slots).
  const Blocks bl = balanced_blocks(n, p);
  const int64_t blocks = bl.nb;
  const int64_t tiles = ceil_div(vocab, p.vt);
  int64_t splits = blocks >= p.workers ? 1 : std::min(tiles, p.slots / blocks);
  const int64_t vchunk = ceil_div(tiles, splits) * p.vt;
  splits = ceil_div(vocab, vchunk);
  const int64_t items = blocks * splits;
  auto slot = [&](int64_t b, int64_t s) {
    return reinterpret_cast<float *>(ws + p.slot_base + (b * splits + s) * p.slot_bytes);
  };
  const int workers = int(std::min<int64_t>(p.workers, items));
#pragma omp parallel num_threads(workers)
  {
    char *sc = ws + p.scratch + omp_get_thread_num() * p.scratch_bytes;
    Scratch w;
    w.hp = reinterpret_cast<float *>(sc);
    sc += round_up(p.tb * d * 4, kAlign);
    w.ut = reinterpret_cast<float *>(sc);
    sc += round_up(p.vt * p.ldu * 4, kAlign);
    w.st = reinterpret_cast<float *>(sc);
    sc += round_up(p.vt * p.ldp * 4, kAlign);
    w.alpha = reinterpret_cast<float *>(sc);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / splits, s = item % splits;
      float *sl = slot(b, s);
      Item it;
      const int64_t r0 = bl.start(b);
      it.rows = rows + r0;
      it.nrows = std::min(bl.start(b + 1), n) - r0;
      it.v_begin = s * vchunk;
      it.v_end = std::min(vocab, it.v_begin + vchunk);
      it.m = sl;
      it.l = sl + p.tb6;
      it.acc = sl + 2 * p.tb6;
      it.tgt = tgt + r0;
      run_item(h, u, targets, hidden, p, it, w);
    }
  }

  // Merge per row; the row losses replace the target logits in tgt, then are summed in order.
  const float inv_count = 1.f / float(n);
  const int64_t stride = p.slot_bytes / int64_t(sizeof(float));
#pragma omp parallel for num_threads(p.workers) schedule(static) if (n * d >= kParallelMinElements)
  for (int64_t c = 0; c < n; ++c) {
    const int64_t panel = c / kNR, big = bl.extra * (bl.base + 1);  // panels in the larger blocks
    const int64_t b = panel < big ? panel / (bl.base + 1) : bl.extra + (panel - big) / bl.base;
    const int64_t i = c - bl.start(b), t = rows[c];
    tgt[c] = finish_row(u, dh + t * d, targets[t], vocab, d, slot(b, 0), stride, splits, p.tb6, i,
                        tgt[c], inv_count);
  }
  *loss = mean_loss(tgt, n);
  return RELAT_OK;
}

// ---- OpenBLAS path: the sweep -------------------------------------------------------------------

// One row of the S tile: the running max m grows to the tile's max if larger (rescaling l and the
// row's acc), S becomes P = exp(S - m) in place, l gains its sum. A row's first finite max needs
// no rescaling: acc is then written by the tile product with beta = 0.
RELAT_VECTOR_CLONES void online_softmax_row(float *s, int64_t nv, float *m, float *l, float *acc,
                                            int64_t d) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  v8f mx8 = splat8(kNegInf);
  int64_t j = 0;
  for (; j + 8 <= nv; j += 8) mx8 = max8(mx8, load8(s + j));
  float mx = hmax8(mx8);
  for (; j < nv; ++j) mx = std::max(mx, s[j]);
  if (mx > *m) {
    if (*m != kNegInf) {
      const float alpha = exp_f32(*m - mx);
      *l *= alpha;
      for (int64_t k = 0; k < d; ++k) acc[k] *= alpha;
    }
    *m = mx;
  }
  const v8f m8 = splat8(*m);
  v8f sum8 = {};
  for (j = 0; j + 8 <= nv; j += 8) {
    const v8f e = exp8(load8(s + j) - m8);
    store8(s + j, e);
    sum8 += e;
  }
  float sum = hsum8(sum8);
  for (; j < nv; ++j) {
    const float e = exp_f32(s[j] - *m);
    s[j] = e;
    sum += e;
  }
  *l += sum;
}

template <class T>
relat_status run_blas(Sgemm sgemm, const T *h, const T *u, const int64_t *targets,
                      int64_t ignore_index, float *loss, T *dh, int64_t tokens, int64_t hidden,
                      int64_t vocab, char *ws, const BlasPlan &p) {
  const int64_t d = hidden;
  int64_t *rows = reinterpret_cast<int64_t *>(ws + p.rows);
  float *tgt = reinterpret_cast<float *>(ws + p.tgt);
  const int64_t n = compact_counted(targets, ignore_index, dh, tokens, d, rows, tgt);
  if (n == 0) {
    *loss = std::numeric_limits<float>::quiet_NaN();
    return RELAT_OK;
  }
  float *slot = reinterpret_cast<float *>(ws + p.slot);
  float *m = slot, *l = slot + p.ld_ml, *acc = slot + 2 * p.ld_ml;
  float *hc = reinterpret_cast<float *>(ws + p.hc), *st = reinterpret_cast<float *>(ws + p.st);
  const bool parallel_rows = n * d >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel_rows)
  for (int64_t c = 0; c < n; ++c) {
    to_f32_row(h + rows[c] * d, hc + c * d, d);
    m[c] = -std::numeric_limits<float>::infinity();
    l[c] = 0.f;
  }
  for (int64_t v0 = 0; v0 < vocab; v0 += p.vt) {
    const int64_t nv = std::min(p.vt, vocab - v0);
    const float *ut;
    if constexpr (std::is_same_v<T, float>) {
      ut = u + v0 * d;
    } else {
      float *conv = reinterpret_cast<float *>(ws + p.ut);
#pragma omp parallel for schedule(static) if (nv * d >= kParallelMinElements)
      for (int64_t j = 0; j < nv; ++j) to_f32_row(u + (v0 + j) * d, conv + j * d, d);
      ut = conv;
    }
    sgemm(kCblasRowMajor, kCblasNoTrans, kCblasTrans, int(n), int(nv), int(d), 1.f, hc, int(d), ut,
          int(d), 0.f, st, int(nv));
#pragma omp parallel for schedule(static) if (n * nv >= kParallelMinElements)
    for (int64_t c = 0; c < n; ++c) {
      float *s = st + c * nv;
      const int64_t t = targets[rows[c]];
      const bool here = t >= v0 && t < v0 + nv;
      if (here) tgt[c] = s[t - v0];
      online_softmax_row(s, nv, m + c, l + c, acc + c * d, d);
      if (here) s[t - v0] = 0.f;  // the target's weight p_t - 1 is formed at the end, in fp32
    }
    sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, int(n), int(d), int(nv), 1.f, st, int(nv),
          ut, int(d), v0 == 0 ? 0.f : 1.f, acc, int(d));
  }
  const float inv_count = 1.f / float(n);
#pragma omp parallel for schedule(static) if (parallel_rows)
  for (int64_t c = 0; c < n; ++c) {
    const int64_t t = rows[c];
    tgt[c] = finish_row(u, dh + t * d, targets[t], vocab, d, slot, 0, 1, p.ld_ml, c, tgt[c],
                        inv_count);
  }
  *loss = mean_loss(tgt, n);
  return RELAT_OK;
}

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_linear_cross_entropy_workspace_bytes(
    int64_t tokens, int64_t hidden, int64_t vocab, relat_dtype dtype, int64_t *bytes) {
  if (auto m = relat::validate::linear_cross_entropy_workspace_bytes(tokens, hidden, vocab, dtype,
                                                                     bytes);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  *bytes = workspace_bytes(tokens, hidden, vocab, int(dtype) != RELAT_F32, omp_get_max_threads());
  return RELAT_OK;
}

extern "C" relat_status relat_cpu_linear_cross_entropy(const void *h, const void *u,
                                                       const int64_t *targets, int64_t ignore_index,
                                                       float *loss, void *dh, int64_t tokens,
                                                       int64_t hidden, int64_t vocab,
                                                       void *workspace, int64_t workspace_bytes_,
                                                       relat_dtype dtype, relat_stream) {
  const char *op = "linear_cross_entropy";
  if (auto m = relat::validate::linear_cross_entropy(h, u, targets, loss, dh, tokens, hidden, vocab,
                                                     dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  // (The dtype is checked by dispatch_dtype below; read it as an int until then.)
  const bool convert_u = int(dtype) != RELAT_F32;
  const int64_t needed = workspace_bytes(tokens, hidden, vocab, convert_u, omp_get_max_threads());
  if (auto m = relat::validate::workspace(op, workspace, workspace_bytes_, needed); !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (tokens == 0) {
    *loss = std::numeric_limits<float>::quiet_NaN();
    return RELAT_OK;
  }
  char *ws = aligned(workspace);
  const Sgemm sgemm = blas_fits(tokens, hidden) ? sgemm_in_use() : nullptr;
  return dispatch_dtype(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *h_ = static_cast<const T *>(h), *u_ = static_cast<const T *>(u);
    T *dh_ = static_cast<T *>(dh);
    if (sgemm)
      return run_blas(sgemm, h_, u_, targets, ignore_index, loss, dh_, tokens, hidden, vocab, ws,
                      make_blas_plan(tokens, hidden, vocab, convert_u));
    return run(h_, u_, targets, ignore_index, loss, dh_, tokens, hidden, vocab, ws,
               make_plan(tokens, hidden, omp_get_max_threads()));
  });
}
