// Segmented LoRA, forward and backward (kernels/lora_segmented.cu run through the CUDA emulation,
// and the CPU twin native/src/lora_segmented.cpp), each against an fp64 reference: ragged segments
// (empty ones included), every dtype, ranks off the vector widths, lengths off every vector width.
// The op accumulates into y, dx, da and db, so they start from random values and a skipped or
// doubled element shows as an error of the size of its delta.
// Isolation: a segment's outputs must be the same bits when the other segments' rows and adapters
// change, when there are more or fewer segments, and when the segment starts at another row.
// Errors are measured at the scale of the terms (|start| + sum of |products|), as in emu_gemv_test.
#include <cmath>
#include <string>
#include <vector>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Problem {
  relat_dtype d;
  int64_t in, out, rank;
  std::vector<int64_t> offsets;  // segments + 1 entries
  float scale;
  Tensor x, dy, y, dx;  // activations (dtype)
  std::vector<float> a, b, da, db;
  int64_t segments() const { return int64_t(offsets.size()) - 1; }
  int64_t rows() const { return offsets.back(); }
};

std::vector<float> random_floats(Rng &rng, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float &f : v) f = rng.uniform(lo, hi);
  return v;
}

Problem make(Rng &rng, relat_dtype d, int64_t in, int64_t out, int64_t rank,
             const std::vector<int64_t> &sizes) {
  Problem p;
  p.d = d;
  p.in = in;
  p.out = out;
  p.rank = rank;
  p.offsets = {0};
  for (int64_t n : sizes) p.offsets.push_back(p.offsets.back() + n);
  p.scale = rng.uniform(0.5f, 2.f);
  const int64_t s = p.segments(), rows = p.rows();
  const size_t rows1 = size_t(std::max<int64_t>(rows, 1));
  p.x = random_tensor(rng, d, rows1 * size_t(in), -1.f, 1.f);
  p.dy = random_tensor(rng, d, rows1 * size_t(out), -1.f, 1.f);
  p.y = random_tensor(rng, d, rows1 * size_t(out), -1.f, 1.f);
  p.dx = random_tensor(rng, d, rows1 * size_t(in), -1.f, 1.f);
  p.a = random_floats(rng, size_t(s * rank * in), -1.f, 1.f);
  p.b = random_floats(rng, size_t(s * out * rank), -1.f, 1.f);
  p.da = random_floats(rng, size_t(s * rank * in), -1.f, 1.f);
  p.db = random_floats(rng, size_t(s * out * rank), -1.f, 1.f);
  return p;
}

relat_status forward(bool cuda, Problem &p) {
  auto f = cuda ? relat_cuda_lora_segmented_forward : relat_cpu_lora_segmented_forward;
  return f(p.x.data(), p.a.data(), p.b.data(), p.offsets.data(), p.segments(), p.rows(), p.in,
           p.out, p.rank, p.scale, p.y.data(), p.d, nullptr);
}

relat_status backward(bool cuda, Problem &p, bool with_dx) {
  auto f = cuda ? relat_cuda_lora_segmented_backward : relat_cpu_lora_segmented_backward;
  return f(p.x.data(), p.dy.data(), p.a.data(), p.b.data(), p.offsets.data(), p.segments(),
           p.rows(), p.in, p.out, p.rank, p.scale, p.da.data(), p.db.data(),
           with_dx ? p.dx.data() : nullptr, p.d, nullptr);
}

double activation_tolerance(relat_dtype d) {
  // Two roundings to the dtype (the delta, then the sum). Worst seen over 5 runs (3,050 checks):
  // 41% (bf16: 4.1e-3), 20% (f16), 0.4% (f32) of these.
  if (d == RELAT_BF16) return 1e-2;
  if (d == RELAT_F16) return 2e-3;
  return 2e-5;
}
constexpr double kWeightTolerance = 2e-5;  // da, db: fp32 sums of a few thousand terms

struct Worst {
  double e = 0;
  void add(double got, double want, double bound) {
    const double r = std::fabs(got - want) / (bound + 1e-30);
    e = std::isnan(r) || r > e ? r : e;  // NaN sticks
  }
};

// Checks p (after forward or backward) against the reference from p0 (the inputs before the call).
void check_values(Counter &counter, const char *what, const Problem &p0, const Problem &p,
                  bool backward, bool with_dx) {
  const relat_dtype d = p.d;
  const int64_t in = p.in, out = p.out, r = p.rank;
  const double tol = activation_tolerance(d);
  Worst wy, wdx, wda, wdb;
  for (int64_t s = 0; s < p.segments(); ++s) {
    const float *as = p0.a.data() + s * r * in, *bs = p0.b.data() + s * out * r;
    std::vector<double> da_sum(size_t(r * in), 0), da_abs(size_t(r * in), 0);
    std::vector<double> db_sum(size_t(out * r), 0), db_abs(size_t(out * r), 0);
    for (int64_t t = p.offsets[size_t(s)]; t < p.offsets[size_t(s) + 1]; ++t) {
      const size_t rn = static_cast<size_t>(r);
      std::vector<double> u(rn), ua(rn), g(rn), ga(rn);
      for (int64_t k = 0; k < r; ++k) {
        double su = 0, sa = 0, sg = 0, sga = 0;
        for (int64_t c = 0; c < in; ++c) {
          const double v = double(p0.x.at(size_t(t * in + c))) * as[k * in + c];
          su += v;
          sa += std::fabs(v);
        }
        for (int64_t j = 0; j < out; ++j) {
          const double v = double(p0.dy.at(size_t(t * out + j))) * bs[j * r + k];
          sg += v;
          sga += std::fabs(v);
        }
        u[size_t(k)] = su;
        ua[size_t(k)] = sa;
        g[size_t(k)] = sg;
        ga[size_t(k)] = sga;
      }
      if (!backward) {
        for (int64_t j = 0; j < out; ++j) {
          double sum = 0, abs = 0;
          for (int64_t k = 0; k < r; ++k) {
            sum += bs[j * r + k] * u[size_t(k)];
            abs += std::fabs(bs[j * r + k]) * ua[size_t(k)];
          }
          const double y0 = p0.y.at(size_t(t * out + j));
          wy.add(p.y.at(size_t(t * out + j)), y0 + p.scale * sum,
                 tol * (std::fabs(y0) + p.scale * abs));
        }
        continue;
      }
      if (with_dx)
        for (int64_t c = 0; c < in; ++c) {
          double sum = 0, abs = 0;
          for (int64_t k = 0; k < r; ++k) {
            sum += g[size_t(k)] * as[k * in + c];
            abs += ga[size_t(k)] * std::fabs(as[k * in + c]);
          }
          const double x0 = p0.dx.at(size_t(t * in + c));
          wdx.add(p.dx.at(size_t(t * in + c)), x0 + p.scale * sum,
                  tol * (std::fabs(x0) + p.scale * abs));
        }
      for (int64_t k = 0; k < r; ++k) {
        for (int64_t c = 0; c < in; ++c) {
          const double xv = p0.x.at(size_t(t * in + c));
          da_sum[size_t(k * in + c)] += g[size_t(k)] * xv;
          da_abs[size_t(k * in + c)] += ga[size_t(k)] * std::fabs(xv);
        }
        for (int64_t j = 0; j < out; ++j) {
          const double dv = p0.dy.at(size_t(t * out + j));
          db_sum[size_t(j * r + k)] += dv * u[size_t(k)];
          db_abs[size_t(j * r + k)] += std::fabs(dv) * ua[size_t(k)];
        }
      }
    }
    if (!backward) continue;
    for (int64_t i = 0; i < r * in; ++i) {
      const double w0 = p0.da[size_t(s * r * in + i)];
      wda.add(p.da[size_t(s * r * in + i)], w0 + p.scale * da_sum[size_t(i)],
              kWeightTolerance * (std::fabs(w0) + p.scale * da_abs[size_t(i)]));
    }
    for (int64_t i = 0; i < out * r; ++i) {
      const double w0 = p0.db[size_t(s * out * r + i)];
      wdb.add(p.db[size_t(s * out * r + i)], w0 + p.scale * db_sum[size_t(i)],
              kWeightTolerance * (std::fabs(w0) + p.scale * db_abs[size_t(i)]));
    }
  }
  if (!backward) {
    counter.check(wy.e <= 1.0, "%s: y worst error %.3g of the bound", what, wy.e);
    return;
  }
  counter.check(wda.e <= 1.0, "%s: da worst error %.3g of the bound", what, wda.e);
  counter.check(wdb.e <= 1.0, "%s: db worst error %.3g of the bound", what, wdb.e);
  if (with_dx) counter.check(wdx.e <= 1.0, "%s: dx worst error %.3g of the bound", what, wdx.e);
}

void check(Counter &counter, Rng &rng, relat_dtype d, int64_t in, int64_t out, int64_t rank,
           const std::vector<int64_t> &sizes) {
  const Problem p0 = make(rng, d, in, out, rank, sizes);
  for (bool cuda : {true, false}) {
    for (int pass = 0; pass < 3; ++pass) {  // forward; backward with dx; backward without
      const bool bwd = pass > 0, with_dx = pass == 1;
      Problem p = p0;
      char what[200];
      std::snprintf(what, sizeof what,
                    "%s lora_segmented_%s%s %s in=%lld out=%lld rank=%lld "
                    "segments=%lld rows=%lld",
                    cuda ? "emulated" : "cpu", bwd ? "backward" : "forward",
                    bwd && !with_dx ? " (dx=NULL)" : "", dtype_name(d), (long long)in,
                    (long long)out, (long long)rank, (long long)p.segments(), (long long)p.rows());
      const relat_status st = bwd ? backward(cuda, p, with_dx) : forward(cuda, p);
      if (!counter.check(st == RELAT_OK, "%s: status %d (%s)", what, st,
                         cuda ? relat_cuda_last_error() : relat_cpu_last_error()))
        continue;
      check_values(counter, what, p0, p, bwd, with_dx);
      if (bwd && !with_dx)
        counter.check(std::memcmp(p.dx.data(), p0.dx.data(), p0.dx.size_bytes()) == 0,
                      "%s: dx untouched", what);
      if (p.rows() == 0)
        counter.check(std::memcmp(p.y.data(), p0.y.data(), p0.y.size_bytes()) == 0 &&
                          p.da == p0.da && p.db == p0.db,
                      "%s: rows=0 writes nothing", what);
    }
  }
}

// Segment `target` of layout A, placed at index ti with other segments around it in layouts B
// and C, must give the same bits in every output.
void check_isolation(Counter &counter, Rng &rng, relat_dtype d, int64_t in, int64_t out,
                     int64_t rank, int64_t n) {
  struct Layout {
    std::vector<int64_t> sizes;
    int ti;
  };
  const Layout layouts[] = {{{5, n, 7}, 1}, {{2, 3, n, 0, 9, 4}, 2}, {{n, 11}, 0}};
  const Problem mine = make(rng, d, in, out, rank, {n});  // the target's data
  for (bool cuda : {true, false}) {
    std::vector<Problem> runs;
    for (const Layout &l : layouts) {
      Problem p = make(rng, d, in, out, rank, l.sizes);  // fresh data for the other segments
      p.scale = mine.scale;
      const int64_t t0 = p.offsets[size_t(l.ti)], ti = l.ti;
      const size_t esz = dtype_size(d);
      for (Tensor *dst : {&p.x, &p.dx})
        std::memcpy(static_cast<char *>(dst->data()) + size_t(t0 * in) * esz,
                    (dst == &p.x ? mine.x : mine.dx).data(), size_t(n * in) * esz);
      for (Tensor *dst : {&p.dy, &p.y})
        std::memcpy(static_cast<char *>(dst->data()) + size_t(t0 * out) * esz,
                    (dst == &p.dy ? mine.dy : mine.y).data(), size_t(n * out) * esz);
      std::copy(mine.a.begin(), mine.a.end(), p.a.begin() + ti * rank * in);
      std::copy(mine.da.begin(), mine.da.end(), p.da.begin() + ti * rank * in);
      std::copy(mine.b.begin(), mine.b.end(), p.b.begin() + ti * out * rank);
      std::copy(mine.db.begin(), mine.db.end(), p.db.begin() + ti * out * rank);
      const relat_status sf = forward(cuda, p), sb = backward(cuda, p, true);
      if (!counter.check(sf == RELAT_OK && sb == RELAT_OK, "isolation: status %d %d (%s)", sf, sb,
                         cuda ? relat_cuda_last_error() : relat_cpu_last_error()))
        return;
      runs.push_back(std::move(p));
    }
    for (size_t i = 1; i < runs.size(); ++i) {
      const Problem &p = runs[0], &q = runs[i];
      const int64_t tp = p.offsets[size_t(layouts[0].ti)], tq = q.offsets[size_t(layouts[i].ti)];
      const int64_t sp = layouts[0].ti, sq = layouts[i].ti;
      const size_t esz = dtype_size(d);
      const bool same = std::memcmp(static_cast<const char *>(p.y.data()) + size_t(tp * out) * esz,
                                    static_cast<const char *>(q.y.data()) + size_t(tq * out) * esz,
                                    size_t(n * out) * esz) == 0 &&
                        std::memcmp(static_cast<const char *>(p.dx.data()) + size_t(tp * in) * esz,
                                    static_cast<const char *>(q.dx.data()) + size_t(tq * in) * esz,
                                    size_t(n * in) * esz) == 0 &&
                        std::memcmp(p.da.data() + sp * rank * in, q.da.data() + sq * rank * in,
                                    size_t(rank * in) * 4) == 0 &&
                        std::memcmp(p.db.data() + sp * out * rank, q.db.data() + sq * out * rank,
                                    size_t(out * rank) * 4) == 0;
      counter.check(same,
                    "%s isolation %s in=%lld out=%lld rank=%lld rows=%lld: layout %zu gives the "
                    "segment's y, dx, da, db bit for bit as layout 0",
                    cuda ? "emulated" : "cpu", dtype_name(d), (long long)in, (long long)out,
                    (long long)rank, (long long)n, i);
    }
  }
}

void check_errors(Counter &counter) {
  float buf[64] = {}, out[64] = {};
  const int64_t good[] = {0, 1, 2}, bad_order[] = {0, 2, 1}, bad_first[] = {1, 1, 2},
                bad_last[] = {0, 1, 1};
  struct Case {
    const char *name, *needle;
    const void *x;
    const int64_t *offsets;
    int64_t segments, rows, in, outw, rank;
    relat_status want;
    bool cpu_only;  // the offsets' contents: checked by the CPU library only
  } cases[] = {
      {"segments=0", "segments=0", buf, good, 0, 2, 2, 2, 1, RELAT_ERR_INVALID_ARGUMENT, false},
      {"segments=257", "segments=257", buf, good, 257, 2, 2, 2, 1, RELAT_ERR_INVALID_ARGUMENT,
       false},
      {"rank=0", "rank=0", buf, good, 2, 2, 2, 2, 0, RELAT_ERR_INVALID_ARGUMENT, false},
      {"rank=65", "rank=65", buf, good, 2, 2, 2, 2, 65, RELAT_ERR_INVALID_ARGUMENT, false},
      {"in=0", "in=0", buf, good, 2, 2, 0, 2, 1, RELAT_ERR_INVALID_ARGUMENT, false},
      {"rows=-1", "rows=-1", buf, good, 2, -1, 2, 2, 1, RELAT_ERR_INVALID_ARGUMENT, false},
      {"x=NULL", "x is null", nullptr, good, 2, 2, 2, 2, 1, RELAT_ERR_INVALID_ARGUMENT, false},
      {"offsets=NULL", "offsets is null", buf, nullptr, 2, 2, 2, 2, 1, RELAT_ERR_INVALID_ARGUMENT,
       false},
      {"rows=0, x=NULL", "", nullptr, nullptr, 2, 0, 2, 2, 1, RELAT_OK, false},
      {"decreasing offsets", "offsets[2] = 1", buf, bad_order, 2, 2, 2, 2, 1,
       RELAT_ERR_INVALID_ARGUMENT, true},
      {"offsets[0] != 0", "offsets[0] = 1", buf, bad_first, 2, 2, 2, 2, 1,
       RELAT_ERR_INVALID_ARGUMENT, true},
      {"offsets[segments] != rows", "offsets[2] = 1", buf, bad_last, 2, 2, 2, 2, 1,
       RELAT_ERR_INVALID_ARGUMENT, true},
  };
  for (const Case &c : cases) {
    const relat_status fc =
        relat_cpu_lora_segmented_forward(c.x, buf, buf, c.offsets, c.segments, c.rows, c.in, c.outw,
                                         c.rank, 1.f, out, RELAT_F32, nullptr);
    const std::string mf = relat_cpu_last_error();
    const relat_status bc = relat_cpu_lora_segmented_backward(
        c.x, buf, buf, buf, c.offsets, c.segments, c.rows, c.in, c.outw, c.rank, 1.f, out, out,
        nullptr, RELAT_F32, nullptr);
    const std::string mb = relat_cpu_last_error();
    bool ok = fc == c.want && bc == c.want;
    if (c.want != RELAT_OK)
      ok = ok && mf.find(c.needle) != std::string::npos && mb.find(c.needle) != std::string::npos;
    if (!c.cpu_only) {
      const relat_status fe =
          relat_cuda_lora_segmented_forward(c.x, buf, buf, c.offsets, c.segments, c.rows, c.in,
                                            c.outw, c.rank, 1.f, out, RELAT_F32, nullptr);
      const relat_status be = relat_cuda_lora_segmented_backward(
          c.x, buf, buf, buf, c.offsets, c.segments, c.rows, c.in, c.outw, c.rank, 1.f, out, out,
          nullptr, RELAT_F32, nullptr);
      ok = ok && fe == c.want && be == c.want;
    }
    counter.check(ok, "lora_segmented rejects %s, naming it: cpu %d/%d (%s)", c.name, fc, bc,
                  mf.c_str());
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  struct Shape {
    int64_t in, out, rank;
    std::vector<int64_t> sizes;
  };
  const std::vector<Shape> shapes = {
      {1, 1, 1, {1}},
      {16, 24, 4, {3, 0, 5}},
      {33, 17, 3, {1, 1, 1, 1}},
      {64, 96, 8, {0, 9, 0, 2, 0}},
      {130, 40, 5, {12, 1}},
      {256, 264, 16, {1, 19, 3}},
      {1030, 72, 12, {2, 0, 3}},
      {48, 520, 64, {4, 10}},
      {40, 24, 7, {}},  // rows = 0 (one empty segment)
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) {
    for (const Shape &s : shapes) {
      if (reduced_matrix() && d != RELAT_BF16 && s.in > 100) continue;
      std::vector<int64_t> sizes = s.sizes.empty() ? std::vector<int64_t>{0} : s.sizes;
      check(counter, rng, d, s.in, s.out, s.rank, sizes);
    }
  }
  for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
    check_isolation(counter, rng, d, 72, 40, 8, 11);
    check_isolation(counter, rng, d, 40, 136, 5, 3);
  }
  check_errors(counter);
  return counter.finish();
}
