// Training attention: kernels/attention.cu (forward, backward prep / main / convert) run on the CPU
// through the CUDA emulation, against the CPU twin native/src/attention.cpp, on fresh random data
// with NaN-poisoned outputs: every dtype, Tq = 1, prefix 0 and > 0, GQA ratios 1, 4 and 8,
// lengths that are not multiples of the 32-row / 32-key tiles, K/V read through a row stride, and
// dk/dv accumulation. Errors are measured against the largest magnitude of each tensor (the two
// implementations sum in different orders, so elements near zero differ by ~1 ulp of the max), and
// for dq and dk at least against the size of the terms that cancel in them (max_dp).
#include <algorithm>
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t tq, prefix, hq, hkv, d;
  int64_t extra_stride;  // kv row stride = hkv*d + extra_stride
};

// floor: a magnitude below which the reference's own size does not bound the error (see dq, dk).
Tolerance scaled(relat_dtype d, const Tensor &want, float floor = 0.f) {
  float mx = floor;
  for (size_t i = 0; i < want.n; ++i) mx = std::max(mx, std::fabs(want.at(i)));
  const Tolerance t = tolerance(d);
  return {t.rtol, t.rtol * mx + t.atol};
}

float max_abs(const Tensor &t) {
  float mx = 0.f;
  for (size_t i = 0; i < t.n; ++i) mx = std::max(mx, std::fabs(t.at(i)));
  return mx;
}

// The largest |dP| = |dout_i . v_j| over the (query, key) pairs a head sees. dq and dk sum
// scale * P (dP - D) times k or q, where D = sum_j P dP: the difference cancels (to exactly 0 with a
// single key) and each library rounds dP and D in its own order, so their error is a few ulps of
// dP, not of the result. Near-zero gradients (Tq = 1 without a prefix) need this floor.
float max_dp(const Tensor &dout, const Tensor &v, const Shape &s, int64_t tk, int64_t stride) {
  float mx = 0.f;
  for (int64_t i = 0; i < s.tq; ++i)
    for (int64_t h = 0; h < s.hq; ++h)
      for (int64_t j = 0; j <= s.prefix + i && j < tk; ++j) {
        const int64_t kvh = h / (s.hq / s.hkv);
        double dot = 0;
        for (int64_t c = 0; c < s.d; ++c)
          dot += double(dout.at(size_t((i * s.hq + h) * s.d + c))) *
                 v.at(size_t(j * stride + kvh * s.d + c));
        mx = std::max(mx, float(std::fabs(dot)));
      }
  return mx;
}

void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool accumulate) {
  const int64_t tk = s.tq + s.prefix, stride = s.hkv * s.d + s.extra_stride;
  const size_t nq = size_t(s.tq * s.hq * s.d), nkv = size_t(tk * s.hkv * s.d);
  const size_t nkv_strided = size_t(tk > 0 ? (tk - 1) * stride + s.hkv * s.d : 0);
  const float scale = 1.f / std::sqrt(float(s.d));
  const Tensor q = random_tensor(rng, d, nq, -2.f, 2.f);
  const Tensor k = random_tensor(rng, d, nkv_strided, -2.f, 2.f);
  const Tensor v = random_tensor(rng, d, nkv_strided, -2.f, 2.f);
  const Tensor dout = random_tensor(rng, d, nq, -1.f, 1.f);
  char what[200];
  std::snprintf(what, sizeof what, "attention %s tq=%lld P=%lld hq=%lld hkv=%lld D=%lld stride+%lld%s",
                dtype_name(d), (long long)s.tq, (long long)s.prefix, (long long)s.hq,
                (long long)s.hkv, (long long)s.d, (long long)s.extra_stride,
                accumulate ? " accumulate" : "");

  // Forward.
  Tensor out_emu(d, nq), out_cpu(d, nq), lse_emu(RELAT_F32, size_t(s.tq * s.hq)),
      lse_cpu(RELAT_F32, size_t(s.tq * s.hq));
  poison(out_emu);
  poison(out_cpu);
  poison(lse_emu);
  poison(lse_cpu);
  const auto t0 = std::chrono::steady_clock::now();
  const relat_status fe = relat_cuda_attention_forward(
      q.data(), k.data(), v.data(), out_emu.data(), static_cast<float *>(lse_emu.data()), s.tq, tk,
      s.hq, s.hkv, s.d, stride, scale, d, nullptr);
  const double ms_fwd =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status fc = relat_cpu_attention_forward(
      q.data(), k.data(), v.data(), out_cpu.data(), static_cast<float *>(lse_cpu.data()), s.tq, tk,
      s.hq, s.hkv, s.d, stride, scale, d, nullptr);
  if (!counter.check(fe == RELAT_OK && fc == RELAT_OK, "%s forward: status emulated %d (%s), cpu %d (%s)",
                     what, fe, relat_cuda_last_error(), fc, relat_cpu_last_error()))
    return;
  const Comparison co = compare(out_emu, out_cpu, scaled(d, out_cpu));
  counter.check(co.ok, "%s: out %s [%.0f ms emulated]", what, co.describe().c_str(), ms_fwd);
  const Comparison cl = compare(lse_emu, lse_cpu, scaled(RELAT_F32, lse_cpu));
  counter.check(cl.ok, "%s: lse %s", what, cl.describe().c_str());

  // Backward from the CPU forward's out and lse, so both see the same inputs.
  int64_t ws_emu_bytes = 0, ws_cpu_bytes = 0;
  relat_cuda_attention_backward_workspace_bytes(s.tq, tk, s.hq, s.hkv, s.d, d, &ws_emu_bytes);
  relat_cpu_attention_backward_workspace_bytes(s.tq, tk, s.hq, s.hkv, s.d, d, &ws_cpu_bytes);
  Tensor ws_emu(RELAT_F32, size_t(std::max<int64_t>(1, ws_emu_bytes / 4))),
      ws_cpu(RELAT_F32, size_t(std::max<int64_t>(1, ws_cpu_bytes / 4)));
  poison(ws_emu);
  poison(ws_cpu);
  Tensor dq_emu(d, nq), dq_cpu(d, nq), dk_emu(d, nkv), dk_cpu(d, nkv), dv_emu(d, nkv), dv_cpu(d, nkv);
  poison(dq_emu);
  poison(dq_cpu);
  if (accumulate) {  // both start from the same gradient of earlier segments
    dk_emu = random_tensor(rng, d, nkv, -1.f, 1.f);
    dv_emu = random_tensor(rng, d, nkv, -1.f, 1.f);
    dk_cpu = dk_emu;
    dv_cpu = dv_emu;
  } else {
    poison(dk_emu);
    poison(dk_cpu);
    poison(dv_emu);
    poison(dv_cpu);
  }
  const auto t1 = std::chrono::steady_clock::now();
  const relat_status be = relat_cuda_attention_backward(
      dout.data(), q.data(), k.data(), v.data(), out_cpu.data(),
      static_cast<const float *>(lse_cpu.data()), dq_emu.data(), dk_emu.data(), dv_emu.data(),
      static_cast<float *>(ws_emu.data()), ws_emu_bytes, s.tq, tk, s.hq, s.hkv, s.d, stride, scale,
      accumulate, d, nullptr);
  const double ms_bwd =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  const relat_status bc = relat_cpu_attention_backward(
      dout.data(), q.data(), k.data(), v.data(), out_cpu.data(),
      static_cast<const float *>(lse_cpu.data()), dq_cpu.data(), dk_cpu.data(), dv_cpu.data(),
      static_cast<float *>(ws_cpu.data()), ws_cpu_bytes, s.tq, tk, s.hq, s.hkv, s.d, stride, scale,
      accumulate, d, nullptr);
  if (!counter.check(be == RELAT_OK && bc == RELAT_OK, "%s backward: status emulated %d (%s), cpu %d (%s)",
                     what, be, relat_cuda_last_error(), bc, relat_cpu_last_error()))
    return;
  const float dp = scale * max_dp(dout, v, s, tk, stride);
  const Comparison cq = compare(dq_emu, dq_cpu, scaled(d, dq_cpu, dp * max_abs(k)));
  counter.check(cq.ok, "%s: dq %s [%.0f ms emulated]", what, cq.describe().c_str(), ms_bwd);
  const Comparison ck = compare(dk_emu, dk_cpu, scaled(d, dk_cpu, dp * max_abs(q)));
  counter.check(ck.ok, "%s: dk %s", what, ck.describe().c_str());
  const Comparison cv = compare(dv_emu, dv_cpu, scaled(d, dv_cpu));
  counter.check(cv.ok, "%s: dv %s", what, cv.describe().c_str());
}

// Both libraries must reject the same calls with the same message (shared validate.h).
void check_errors(Counter &counter) {
  alignas(16) float buf[256] = {};
  struct Case {
    const char *name;
    int64_t tq, tk, hq, hkv, d, stride;
    const void *q;
    int dtype;
  } cases[] = {
      {"tk<tq", 4, 3, 2, 1, 64, 64, buf, RELAT_F32},
      {"hq%hkv", 1, 1, 3, 2, 64, 128, buf, RELAT_F32},
      {"head_dim=96", 1, 1, 2, 2, 96, 192, buf, RELAT_F32},
      {"stride<hkv*d", 1, 1, 2, 2, 64, 100, buf, RELAT_F32},
      {"stride%8", 1, 1, 2, 1, 64, 68, buf, RELAT_F32},
      {"q=NULL", 1, 1, 2, 2, 64, 128, nullptr, RELAT_F32},
      {"q misaligned", 1, 1, 2, 2, 64, 128, reinterpret_cast<const char *>(buf) + 4, RELAT_F32},
      {"dtype=7", 1, 1, 2, 2, 64, 128, buf, 7},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_attention_forward(c.q, buf, buf, buf, buf, c.tq, c.tk, c.hq, c.hkv,
                                                         c.d, c.stride, 0.1f, relat_dtype(c.dtype), nullptr);
    const std::string me = relat_cuda_last_error();
    const relat_status sc = relat_cpu_attention_forward(c.q, buf, buf, buf, buf, c.tq, c.tk, c.hq, c.hkv,
                                                        c.d, c.stride, 0.1f, relat_dtype(c.dtype), nullptr);
    const std::string mc = relat_cpu_last_error();
    counter.check(se == RELAT_ERR_INVALID_ARGUMENT && sc == se && me == mc,
                  "attention rejects %s: emulated %d '%s', cpu %d '%s'", c.name, se, me.c_str(), sc,
                  mc.c_str());
  }
  const relat_status se = relat_cuda_attention_forward(nullptr, nullptr, nullptr, nullptr, nullptr, 0,
                                                       5, 2, 2, 64, 128, 0.1f, RELAT_F32, nullptr);
  counter.check(se == RELAT_OK, "attention with tq=0 is a no-op: %d", se);
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {
      {1, 0, 4, 4, 64, 0},     // Tq = 1, one key
      {1, 37, 8, 1, 128, 0},   // Tq = 1 after a prefix, ratio 8
      {17, 0, 8, 2, 64, 0},    // ratio 4, no prefix
      {50, 77, 4, 4, 128, 0},  // ratio 1
      {40, 29, 16, 2, 64, 0},  // ratio 8, rows across tiles
      {33, 70, 8, 2, 128, 0},  // ratio 4, tiles cut everywhere
      {20, 45, 4, 1, 64, 72},  // strided K/V rows (a cache with more room per row)
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes) check(counter, rng, d, s, false);
  check(counter, rng, RELAT_F32, {9, 40, 8, 1, 64, 0}, true);
  check(counter, rng, RELAT_BF16, {9, 40, 8, 1, 128, 0}, true);
  check(counter, rng, RELAT_F32, {0, 30, 4, 2, 64, 0}, false);  // no query: dk = dv = 0
  check_errors(counter);
  return counter.finish();
}
