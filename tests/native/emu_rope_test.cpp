// RoPE: kernels/rope.cu run on the CPU through the CUDA emulation, against its CPU twin
// native/src/rope.cpp: forward and backward, every dtype, awkward head dimensions (D/2 odd, not a
// multiple of the vector width), no k heads, token-strided in-place views (the padding between
// tokens must stay untouched), misaligned bases (the kernel's narrower vector paths), NaN-poisoned
// outputs, random unordered positions.
#include <chrono>
#include <cmath>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t tokens, q_heads, kv_heads, head_dim;
};

std::vector<float> inv_freq(int64_t head_dim) {
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.f / std::pow(1e6f, float(2 * i) / float(head_dim));
  return f;
}

std::vector<int64_t> positions(Rng &rng, int64_t tokens) {
  std::vector<int64_t> p(static_cast<size_t>(tokens));
  for (auto &v : p) v = rng.integer(0, 40000);
  return p;
}

using RopeFn = relat_status (*)(const void *, const void *, void *, void *, const int64_t *,
                                const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                relat_dtype, relat_stream);

// Out of place, poisoned outputs. `offset` shifts every base pointer by that many elements.
void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool backward, int64_t offset) {
  const int64_t ldq = s.q_heads * s.head_dim, ldk = s.kv_heads * s.head_dim;
  const size_t nq = size_t(s.tokens * ldq + offset), nk = size_t(s.tokens * ldk + offset);
  const Tensor q = random_tensor(rng, d, nq, -3.f, 3.f), k = random_tensor(rng, d, nk, -3.f, 3.f);
  Tensor q_emu(d, nq), k_emu(d, nk), q_cpu(d, nq), k_cpu(d, nk);
  for (Tensor *t : {&q_emu, &k_emu, &q_cpu, &k_cpu}) poison(*t);
  const auto pos = positions(rng, s.tokens);
  const auto freq = inv_freq(s.head_dim);
  const size_t es = dtype_size(d);
  auto at = [&](const Tensor &t) { return static_cast<const unsigned char *>(t.data()) + offset * es; };
  auto at_mut = [&](Tensor &t) { return static_cast<unsigned char *>(t.data()) + offset * es; };
  const RopeFn emu = backward ? relat_cuda_rope_backward : relat_cuda_rope_forward;
  const RopeFn cpu = backward ? relat_cpu_rope_backward : relat_cpu_rope_forward;
  const auto t0 = std::chrono::steady_clock::now();
  const relat_status se = emu(at(q), s.kv_heads ? at(k) : nullptr, at_mut(q_emu),
                              s.kv_heads ? at_mut(k_emu) : nullptr, pos.data(), freq.data(), s.tokens,
                              s.q_heads, s.kv_heads, s.head_dim, ldq, ldk, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status sc = cpu(at(q), s.kv_heads ? at(k) : nullptr, at_mut(q_cpu),
                              s.kv_heads ? at_mut(k_cpu) : nullptr, pos.data(), freq.data(), s.tokens,
                              s.q_heads, s.kv_heads, s.head_dim, ldq, ldk, d, nullptr);
  char what[160];
  std::snprintf(what, sizeof what, "rope %s %s tokens=%lld heads=%lld/%lld D=%lld offset=%lld",
                backward ? "backward" : "forward", dtype_name(d), (long long)s.tokens,
                (long long)s.q_heads, (long long)s.kv_heads, (long long)s.head_dim,
                (long long)offset);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  const size_t skip = size_t(offset);  // the poisoned elements before the base stay NaN in both
  const Comparison cq = compare(at(q_emu), at(q_cpu), d, nq - skip, tolerance(d));
  counter.check(cq.ok, "%s: q %s [%.0f ms emulated]", what, cq.describe().c_str(), ms);
  if (s.kv_heads) {
    const Comparison ck = compare(at(k_emu), at(k_cpu), d, nk - skip, tolerance(d));
    counter.check(ck.ok, "%s: k %s", what, ck.describe().c_str());
  }
}

// In place on token-strided views of one fused [tokens, pad + q | k | v] buffer.
void check_in_place(Counter &counter, Rng &rng, relat_dtype d) {
  const int64_t tokens = 6, qh = 4, kvh = 2, D = 34, pad = 6;
  const int64_t ld = pad + (qh + 2 * kvh) * D;
  const size_t n = size_t(tokens * ld);
  const Tensor fused = random_tensor(rng, d, n, -2.f, 2.f);
  Tensor emu = fused, cpu = fused;
  const auto pos = positions(rng, tokens);
  const auto freq = inv_freq(D);
  const size_t es = dtype_size(d);
  auto q_of = [&](Tensor &t) { return static_cast<unsigned char *>(t.data()) + pad * es; };
  auto k_of = [&](Tensor &t) { return static_cast<unsigned char *>(t.data()) + (pad + qh * D) * es; };
  const relat_status se = relat_cuda_rope_forward(q_of(emu), k_of(emu), q_of(emu), k_of(emu),
                                                  pos.data(), freq.data(), tokens, qh, kvh, D, ld,
                                                  ld, d, nullptr);
  const relat_status sc = relat_cpu_rope_forward(q_of(cpu), k_of(cpu), q_of(cpu), k_of(cpu),
                                                 pos.data(), freq.data(), tokens, qh, kvh, D, ld, ld,
                                                 d, nullptr);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "rope in place %s: status %d, %d",
                     dtype_name(d), se, sc))
    return;
  const Comparison c = compare(emu, cpu, tolerance(d));
  counter.check(c.ok, "rope in place on strided views %s: %s", dtype_name(d), c.describe().c_str());
  int touched = 0;  // padding and v must be bit-identical to the input
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < ld; ++i) {
      const bool rotated = i >= pad && i < pad + (qh + kvh) * D;
      const size_t e = size_t(t * ld + i);
      if (!rotated && std::memcmp(&emu.bytes[e * es], &fused.bytes[e * es], es) != 0) ++touched;
    }
  }
  counter.check(touched == 0, "rope in place %s: %d elements outside q and k written", dtype_name(d),
                touched);
}

void check_errors(Counter &counter) {
  float buf[8] = {};
  int64_t pos[1] = {0};
  struct Case {
    const char *name;
    int64_t tokens, qh, kvh, D, ldq, ldk;
    const void *q;
    const int64_t *positions;
    relat_status want;
  } cases[] = {
      {"odd D", 1, 1, 0, 3, 3, 0, buf, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"D=0", 1, 1, 0, 0, 0, 0, buf, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"D>1024", 1, 1, 0, 1026, 1026, 0, buf, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"ldq<qh*D", 1, 2, 0, 4, 4, 0, buf, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"q=NULL", 1, 1, 0, 4, 4, 0, nullptr, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"positions=NULL", 1, 1, 0, 4, 4, 0, buf, nullptr, RELAT_ERR_INVALID_ARGUMENT},
      {"tokens<0", -1, 1, 0, 4, 4, 0, buf, pos, RELAT_ERR_INVALID_ARGUMENT},
      {"tokens=0", 0, 1, 0, 4, 4, 0, nullptr, nullptr, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_rope_forward(c.q, nullptr, buf, nullptr, c.positions, buf,
                                                    c.tokens, c.qh, c.kvh, c.D, c.ldq, c.ldk,
                                                    RELAT_F32, nullptr);
    const relat_status sc = relat_cpu_rope_forward(c.q, nullptr, buf, nullptr, c.positions, buf,
                                                   c.tokens, c.qh, c.kvh, c.D, c.ldq, c.ldk,
                                                   RELAT_F32, nullptr);
    counter.check(se == c.want && sc == c.want &&
                      std::strcmp(relat_cuda_last_error(), relat_cpu_last_error()) == 0,
                  "rope rejects %s: emulated %d, cpu %d, want %d (\"%s\")", c.name, se, sc, c.want,
                  relat_cpu_last_error());
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {
      {1, 1, 1, 2},  {1, 16, 8, 128}, {3, 5, 1, 6},    {7, 4, 2, 66}, {5, 2, 0, 10},
      {4, 3, 3, 130}, {9, 7, 3, 254}, {2, 1, 1, 1024}, {33, 32, 8, 128},
  };
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes)
      for (bool backward : {false, true}) check(counter, rng, d, s, backward, 0);
  // Misaligned bases: 16-byte vectors impossible, the 2-wide or scalar path runs.
  for (relat_dtype d : {RELAT_F32, RELAT_BF16})
    for (int64_t offset : {1, 2}) check(counter, rng, d, {5, 3, 2, 64}, false, offset);
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) check_in_place(counter, rng, d);
  check_errors(counter);
  return counter.finish();
}
