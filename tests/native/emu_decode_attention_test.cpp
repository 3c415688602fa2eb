// Decode attention: kernels/decode_attention.cu (split + combine) run on the CPU through the CUDA
// emulation, against the CPU twin native/src/decode_attention.cpp, on fresh random data with
// NaN-poisoned outputs and workspace: every dtype, cache lengths 1, 1000 and 32768, GQA ratios 1,
// 2, 4, 6 and 8, a batch with its own lengths (0, clamped, partial last chunk) in a cache whose
// K and V rows are interleaved and preallocated beyond the longest sequence.
#include <algorithm>
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t batch, max_len, capacity, hq, hkv, d;
  bool interleaved;  // K and V rows interleaved: seq stride 2*hkv*d
};

Tolerance scaled(relat_dtype d, const Tensor &want) {
  float mx = 0.f;
  for (size_t i = 0; i < want.n; ++i) mx = std::max(mx, std::fabs(want.at(i)));
  const Tolerance t = tolerance(d);
  return {t.rtol, t.rtol * mx + t.atol};
}

void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, const int32_t *lens) {
  const int64_t row = s.hkv * s.d, seq_stride = s.interleaved ? 2 * row : row;
  const int64_t batch_stride = s.capacity * seq_stride;
  const size_t ncache = size_t(s.batch * batch_stride);
  const Tensor cache = random_tensor(rng, d, ncache + (s.interleaved ? 0 : ncache), -2.f, 2.f);
  const size_t esize = dtype_size(d);
  const unsigned char *base = static_cast<const unsigned char *>(cache.data());
  const void *kc = base;
  const void *vc = base + (s.interleaved ? size_t(row) : ncache) * esize;
  const size_t nq = size_t(s.batch * s.hq * s.d);
  const Tensor q = random_tensor(rng, d, nq, -2.f, 2.f);
  const float scale = 1.f / std::sqrt(float(s.d));
  int64_t ws_bytes = 0, ws_cpu_bytes = 0;
  relat_cuda_decode_attention_workspace_bytes(s.batch, s.hq, s.d, s.max_len, &ws_bytes);
  relat_cpu_decode_attention_workspace_bytes(s.batch, s.hq, s.d, s.max_len, &ws_cpu_bytes);
  Tensor ws_emu(RELAT_F32, size_t(std::max<int64_t>(1, ws_bytes / 4))),
      ws_cpu(RELAT_F32, size_t(std::max<int64_t>(1, ws_bytes / 4)));
  Tensor out_emu(d, nq), out_cpu(d, nq);
  poison(ws_emu);
  poison(ws_cpu);
  poison(out_emu);
  poison(out_cpu);
  char what[200];
  std::snprintf(what, sizeof what, "decode %s batch=%lld max_len=%lld hq=%lld hkv=%lld D=%lld%s%s",
                dtype_name(d), (long long)s.batch, (long long)s.max_len, (long long)s.hq,
                (long long)s.hkv, (long long)s.d, s.interleaved ? " interleaved" : "",
                lens ? " seq_lens" : "");
  counter.check(ws_bytes == ws_cpu_bytes, "%s: workspace emulated %lld, cpu %lld", what,
                (long long)ws_bytes, (long long)ws_cpu_bytes);
  const auto t0 = std::chrono::steady_clock::now();
  const relat_status se = relat_cuda_decode_attention_forward(
      q.data(), kc, vc, out_emu.data(), lens, s.batch, s.max_len, s.hq, s.hkv, s.d, seq_stride,
      batch_stride, scale, static_cast<float *>(ws_emu.data()), ws_bytes, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status sc = relat_cpu_decode_attention_forward(
      q.data(), kc, vc, out_cpu.data(), lens, s.batch, s.max_len, s.hq, s.hkv, s.d, seq_stride,
      batch_stride, scale, static_cast<float *>(ws_cpu.data()), ws_bytes, d, nullptr);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  const Comparison c = compare(out_emu, out_cpu, scaled(d, out_cpu));
  counter.check(c.ok, "%s: out %s [%.0f ms emulated]", what, c.describe().c_str(), ms);
}

void check_errors(Counter &counter) {
  alignas(16) float buf[256] = {};
  struct Case {
    const char *name;
    int64_t batch, max_len, hq, hkv, d, seq_stride, batch_stride, ws_bytes;
    const void *k;
  } cases[] = {
      {"hq%hkv", 1, 4, 3, 2, 64, 128, 0, 1024, buf},
      {"head_dim=32", 1, 4, 2, 2, 32, 64, 0, 1024, buf},
      {"seq_stride<hkv*d", 1, 4, 2, 2, 64, 64, 0, 1024, buf},
      {"batch_stride%8", 1, 4, 2, 2, 64, 128, 12, 1024, buf},
      {"max_len<0", 1, -1, 2, 2, 64, 128, 0, 1024, buf},
      {"workspace too small", 1, 4, 2, 2, 64, 128, 0, 16, buf},
      {"k misaligned", 1, 4, 2, 2, 64, 128, 0, 1024, reinterpret_cast<const char *>(buf) + 2},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_decode_attention_forward(
        buf, c.k, buf, buf, nullptr, c.batch, c.max_len, c.hq, c.hkv, c.d, c.seq_stride,
        c.batch_stride, 0.1f, buf, c.ws_bytes, RELAT_BF16, nullptr);
    const std::string me = relat_cuda_last_error();
    const relat_status sc = relat_cpu_decode_attention_forward(
        buf, c.k, buf, buf, nullptr, c.batch, c.max_len, c.hq, c.hkv, c.d, c.seq_stride,
        c.batch_stride, 0.1f, buf, c.ws_bytes, RELAT_BF16, nullptr);
    const std::string mc = relat_cpu_last_error();
    counter.check(se == RELAT_ERR_INVALID_ARGUMENT && sc == se && me == mc,
                  "decode rejects %s: emulated %d '%s', cpu %d '%s'", c.name, se, me.c_str(), sc,
                  mc.c_str());
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) {
    check(counter, rng, d, {1, 1, 1, 4, 4, 128, false}, nullptr);
    check(counter, rng, d, {1, 1000, 1000, 16, 2, 128, false}, nullptr);
    check(counter, rng, d, {1, 1000, 1010, 6, 1, 64, true}, nullptr);
    check(counter, rng, d, {2, 333, 400, 4, 2, 64, false}, nullptr);
  }
  check(counter, rng, RELAT_BF16, {1, 32768, 32768, 4, 1, 128, false}, nullptr);
  check(counter, rng, RELAT_F32, {1, 32768, 32768, 2, 1, 64, true}, nullptr);
  // A batch with its own lengths: 0 (out = 0), clamped above max_len, one position, a partial chunk.
  const int32_t lens[] = {0, 5000, 1, 650};
  check(counter, rng, RELAT_F32, {4, 700, 720, 8, 1, 128, true}, lens);
  check(counter, rng, RELAT_BF16, {4, 700, 720, 16, 2, 64, false}, lens);
  check_errors(counter);
  return counter.finish();
}
