// Segmented LoRA, forward and backward (kernels/lora_segmented.cu) against the CPU twin
// (native/src/lora_segmented.cpp), the isolation of a segment on the device (same bits whatever the
// other segments hold and however many there are), and timings at Qwen3-0.6B's gate/up projection.
#include <cuda_runtime.h>

#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

struct Lora {
  int64_t in, out, rank;
  std::vector<int64_t> sizes;
};

std::vector<int64_t> offsets_of(const std::vector<int64_t> &sizes) {
  std::vector<int64_t> off = {0};
  for (int64_t n : sizes) off.push_back(off.back() + n);
  return off;
}

Tensor f32_tensor(Rng &rng, size_t n, float bound) {
  return random_tensor(rng, RELAT_F32, n, -bound, bound);
}

// Runs forward then backward (dx included) on the device; the outputs come back into y, dx, da, db.
bool run_device(Counter &c, const char *what, relat_dtype d, const Lora &s,
                const std::vector<int64_t> &off, const Tensor &x, const Tensor &dy, const Tensor &a,
                const Tensor &b, float scale, Tensor &y, Tensor &dx, Tensor &da, Tensor &db) {
  const int64_t segments = int64_t(s.sizes.size()), rows = off.back();
  DeviceBuffer bx(x), bdy(dy), ba(a), bb(b), by(y), bdx(dx), bda(da), bdb(db);
  DeviceBuffer boff(off.size() * sizeof(int64_t));
  boff.upload_raw(off.data(), off.size() * sizeof(int64_t));
  relat_status st = relat_cuda_lora_segmented_forward(
      bx.get(), static_cast<const float *>(ba.get()), static_cast<const float *>(bb.get()),
      static_cast<const int64_t *>(boff.get()), segments, rows, s.in, s.out, s.rank, scale,
      by.get(), d, nullptr);
  if (st == RELAT_OK)
    st = relat_cuda_lora_segmented_backward(
        bx.get(), bdy.get(), static_cast<const float *>(ba.get()),
        static_cast<const float *>(bb.get()), static_cast<const int64_t *>(boff.get()), segments,
        rows, s.in, s.out, s.rank, scale, static_cast<float *>(bda.get()),
        static_cast<float *>(bdb.get()), bdx.get(), d, nullptr);
  if (!device_ok(c, what, st, cudaDeviceSynchronize())) return false;
  by.download(y);
  bdx.download(dx);
  bda.download(da);
  bdb.download(db);
  return true;
}

void check_lora(Counter &c, Rng &rng, relat_dtype d, const Lora &s) {
  const std::vector<int64_t> off = offsets_of(s.sizes);
  const int64_t segments = int64_t(s.sizes.size()), rows = std::max<int64_t>(off.back(), 1);
  const Tensor x = random_tensor(rng, d, size_t(rows * s.in), -1.f, 1.f);
  const Tensor dy = random_tensor(rng, d, size_t(rows * s.out), -1.f, 1.f);
  const Tensor a = f32_tensor(rng, size_t(segments * s.rank * s.in), 1.f / std::sqrt(float(s.in)));
  const Tensor b = f32_tensor(rng, size_t(segments * s.out * s.rank), 1.f);
  const Tensor y0 = random_tensor(rng, d, size_t(rows * s.out), -1.f, 1.f);
  const Tensor dx0 = random_tensor(rng, d, size_t(rows * s.in), -1.f, 1.f);
  const Tensor da0 = f32_tensor(rng, a.n, 1.f), db0 = f32_tensor(rng, b.n, 1.f);
  const float scale = 2.f;
  char what[160];
  std::snprintf(what, sizeof what,
                "lora_segmented %s in=%lld out=%lld rank=%lld segments=%lld "
                "rows=%lld",
                dtype_name(d), (long long)s.in, (long long)s.out, (long long)s.rank,
                (long long)segments, (long long)off.back());
  Tensor y = y0, dx = dx0, da = da0, db = db0;
  if (!run_device(c, what, d, s, off, x, dy, a, b, scale, y, dx, da, db)) return;
  Tensor wy = y0, wdx = dx0, wda = da0, wdb = db0;
  relat_cpu_lora_segmented_forward(x.data(), static_cast<const float *>(a.data()),
                                   static_cast<const float *>(b.data()), off.data(), segments,
                                   off.back(), s.in, s.out, s.rank, scale, wy.data(), d, nullptr);
  relat_cpu_lora_segmented_backward(x.data(), dy.data(), static_cast<const float *>(a.data()),
                                    static_cast<const float *>(b.data()), off.data(), segments,
                                    off.back(), s.in, s.out, s.rank, scale,
                                    static_cast<float *>(wda.data()),
                                    static_cast<float *>(wdb.data()), wdx.data(), d, nullptr);
  // Both twins sum in fp32 in different orders; the deltas' last-bit rounding may differ.
  const double act = relative_bound(d), grad = 1e-5;
  double e = 0;
  c.check(close_relative(y, wy, act, &e), "%s: y error %.3g (bound %.1g)", what, e, act);
  c.check(close_relative(dx, wdx, act, &e), "%s: dx error %.3g (bound %.1g)", what, e, act);
  c.check(close_relative(da, wda, grad, &e), "%s: da error %.3g (bound %.1g)", what, e, grad);
  c.check(close_relative(db, wdb, grad, &e), "%s: db error %.3g (bound %.1g)", what, e, grad);
}

// Segment `n` rows long, alone, then between other segments (other data, more segments, another
// start row): its y, dx, da and db must be the same bits.
void check_isolation(Counter &c, Rng &rng, relat_dtype d, int64_t in, int64_t out, int64_t rank,
                     int64_t n) {
  const size_t es = dtype_size(d);
  const Tensor x = random_tensor(rng, d, size_t(n * in), -1.f, 1.f);
  const Tensor dy = random_tensor(rng, d, size_t(n * out), -1.f, 1.f);
  const Tensor a = f32_tensor(rng, size_t(rank * in), 0.1f),
               b = f32_tensor(rng, size_t(out * rank), 1.f);
  const Tensor y0 = random_tensor(rng, d, size_t(n * out), -1.f, 1.f);
  const Tensor dx0 = random_tensor(rng, d, size_t(n * in), -1.f, 1.f);
  const Tensor da0 = f32_tensor(rng, a.n, 1.f), db0 = f32_tensor(rng, b.n, 1.f);
  const std::vector<int64_t> layouts[] = {{n}, {3, n, 40}, {1, 0, 17, 5, n, 0, 9}};
  const int targets[] = {0, 1, 4};
  std::vector<Tensor> got;
  for (int l = 0; l < 3; ++l) {
    const Lora s{in, out, rank, layouts[l]};
    const std::vector<int64_t> off = offsets_of(s.sizes);
    const int64_t segs = int64_t(s.sizes.size()), rows = off.back(), ti = targets[l];
    const int64_t t0 = off[size_t(ti)];
    Tensor X = random_tensor(rng, d, size_t(rows * in), -1.f, 1.f);
    Tensor DY = random_tensor(rng, d, size_t(rows * out), -1.f, 1.f);
    Tensor A = f32_tensor(rng, size_t(segs * rank * in), 0.1f);
    Tensor B = f32_tensor(rng, size_t(segs * out * rank), 1.f);
    Tensor Y = random_tensor(rng, d, size_t(rows * out), -1.f, 1.f);
    Tensor DX = random_tensor(rng, d, size_t(rows * in), -1.f, 1.f);
    Tensor DA = f32_tensor(rng, A.n, 1.f), DB = f32_tensor(rng, B.n, 1.f);
    auto put = [](Tensor &dst, const Tensor &src, size_t at_bytes) {
      std::memcpy(static_cast<char *>(dst.data()) + at_bytes, src.data(), src.size_bytes());
    };
    put(X, x, size_t(t0 * in) * es);
    put(DX, dx0, size_t(t0 * in) * es);
    put(DY, dy, size_t(t0 * out) * es);
    put(Y, y0, size_t(t0 * out) * es);
    put(A, a, size_t(ti * rank * in) * 4);
    put(DA, da0, size_t(ti * rank * in) * 4);
    put(B, b, size_t(ti * out * rank) * 4);
    put(DB, db0, size_t(ti * out * rank) * 4);
    if (!run_device(c, "lora_segmented isolation", d, s, off, X, DY, A, B, 2.f, Y, DX, DA, DB))
      return;
    Tensor mine(RELAT_F32, 0);
    auto take = [&](const Tensor &src, size_t at_bytes, size_t bytes) {
      const size_t old = mine.bytes.size();
      mine.bytes.resize(old + bytes);
      std::memcpy(mine.bytes.data() + old, static_cast<const char *>(src.data()) + at_bytes, bytes);
    };
    take(Y, size_t(t0 * out) * es, size_t(n * out) * es);
    take(DX, size_t(t0 * in) * es, size_t(n * in) * es);
    take(DA, size_t(ti * rank * in) * 4, size_t(rank * in) * 4);
    take(DB, size_t(ti * out * rank) * 4, size_t(out * rank) * 4);
    got.push_back(std::move(mine));
  }
  for (size_t l = 1; l < got.size(); ++l)
    c.check(got[l].bytes == got[0].bytes,
            "lora_segmented isolation %s in=%lld out=%lld rank=%lld rows=%lld: layout %zu gives "
            "the segment's y, dx, da, db bit for bit as alone",
            dtype_name(d), (long long)in, (long long)out, (long long)rank, (long long)n, l);
}

void check(Counter &c, Rng &rng, bool quick) {
  std::vector<Lora> shapes = {
      {16, 24, 4, {3, 0, 5}},  {130, 257, 5, {0, 4, 1, 0}}, {1024, 3072, 16, {1, 0, 7, 2}},
      {3072, 1024, 8, {2, 5}}, {33, 17, 64, {9}},           {40, 24, 3, {0, 0}}};
  if (!quick)
    shapes.insert(shapes.end(), {{1024, 3072, 8, std::vector<int64_t>(16, 200)},
                                 {25600, 5120, 64, {3, 0, 40, 1}},
                                 {5120, 25600, 64, {64, 1}}});
  for (relat_dtype d : kDtypes) {
    for (const Lora &s : shapes) check_lora(c, rng, d, s);
    check_isolation(c, rng, d, 1024, 3072, 16, 7);
    check_isolation(c, rng, d, 520, 72, 5, 13);
  }
}

void bench_lora(FILE *csv, Rng &rng, relat_dtype d, int64_t in, int64_t out, int64_t rank,
                int64_t questions, int64_t per_question) {
  const size_t es = dtype_size(d);
  const int64_t rows = questions * per_question;
  std::vector<int64_t> off(size_t(questions) + 1);
  for (int64_t q = 0; q <= questions; ++q) off[size_t(q)] = q * per_question;
  DeviceBuffer x(timing_tensor(rng, d, size_t(rows * in), -1.f, 1.f));
  DeviceBuffer dy(timing_tensor(rng, d, size_t(rows * out), -1.f, 1.f));
  DeviceBuffer y(size_t(rows * out) * es), dx(size_t(rows * in) * es);
  cuda_ok(cudaMemset(y.get(), 0, size_t(rows * out) * es), "memset");
  cuda_ok(cudaMemset(dx.get(), 0, size_t(rows * in) * es), "memset");
  DeviceBuffer a(timing_tensor(rng, RELAT_F32, size_t(questions * rank * in), -0.03f, 0.03f));
  DeviceBuffer b(timing_tensor(rng, RELAT_F32, size_t(questions * out * rank), -0.3f, 0.3f));
  DeviceBuffer da(size_t(questions * rank * in) * 4), db(size_t(questions * out * rank) * 4);
  cuda_ok(cudaMemset(da.get(), 0, size_t(questions * rank * in) * 4), "memset");
  cuda_ok(cudaMemset(db.get(), 0, size_t(questions * out * rank) * 4), "memset");
  DeviceBuffer bo(off.size() * sizeof(int64_t));
  bo.upload_raw(off.data(), off.size() * sizeof(int64_t));
  const auto *pa = static_cast<const float *>(a.get());
  const auto *pb = static_cast<const float *>(b.get());
  const auto *po = static_cast<const int64_t *>(bo.get());
  // Floors: activations read (and y written) once, each adapter read once.
  const double adapters = double(questions) * double(rank) * double(in + out) * 4;
  const double fwd_bytes = double(rows) * double(in + 2 * out) * double(es) + adapters;
  const double bwd_bytes = double(rows) * double(2 * in + out) * double(es) + 3 * adapters;
  char name[64];
  std::snprintf(name, sizeof name, "lora_segmented_forward_r%lld_q%lld", (long long)rank,
                (long long)questions);
  bench_one(csv, name, d, rows, out, fwd_bytes, [&] {
    return relat_cuda_lora_segmented_forward(x.get(), pa, pb, po, questions, rows, in, out, rank,
                                             2.f, y.get(), d, nullptr);
  });
  std::snprintf(name, sizeof name, "lora_segmented_backward_r%lld_q%lld", (long long)rank,
                (long long)questions);
  bench_one(csv, name, d, rows, out, bwd_bytes, [&] {
    return relat_cuda_lora_segmented_backward(x.get(), dy.get(), pa, pb, po, questions, rows, in,
                                              out, rank, 2.f, static_cast<float *>(da.get()),
                                              static_cast<float *>(db.get()), dx.get(), d, nullptr);
  });
}

void bench(FILE *csv, Rng &rng) {
  // Qwen3-0.6B gate/up (1024 -> 3072): decode (one row per question) and 200-row segments.
  for (int64_t rank : {8, 16})
    for (int64_t questions : {1, 16})
      for (int64_t per_question : {1, 200})
        bench_lora(csv, rng, RELAT_BF16, 1024, 3072, rank, questions, per_question);
}

}  // namespace

RELAT_GPU_OP("lora_segmented", check, bench);
