// Fused linear cross-entropy: kernels/linear_cross_entropy.cu run on the CPU through the CUDA
// emulation (tensor-core fragments for bf16/fp16 included, via the emulated mma), against its CPU
// twin native/src/linear_cross_entropy.cpp, on fresh random data with NaN-poisoned outputs: every
// dtype, one token, vocabularies off the tile sizes and past one chunk, ignored positions (all but
// one, all of them), an out-of-range target, and the argument checks both libraries share.
//
// Comparison: the loss within the fp32 tolerance; dH as max |emulated - cpu| / max |cpu| within the
// dtype's relative bound (fp32 1e-5, bf16 1e-2, fp16 1e-3): the CUDA kernel feeds the second GEMM
// with probabilities rounded to the storage type (as libtorch does) while the twin keeps them in
// fp32, so an elementwise bound would only measure that rounding on near-zero entries.
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

constexpr int64_t kIgnore = -100;

struct Case {
  int64_t tokens, hidden, vocab;
  double ignored;  // fraction of ignored positions (at least one counted unless all_ignored)
  bool all_ignored = false;
  bool bad_target = false;
  bool confident = false;  // h lifted along U[target]: p_target ~ 0.9999
  float h_scale = 1.f;     // numeric edges: 0 (all-zero rows, uniform softmax), 1e-20 (tiny)
  // Integer h in [-100, 100] and U in {-1, 0, 1}: logits of a few hundred (exp overflows unless the
  // row max is subtracted) that both libraries compute exactly, whatever the summation order. (With
  // random real logits that large, an ulp of a logit is already ~1e-5 of p.)
  bool integer_logits = false;
};

double max_abs(const Tensor &t) {
  double m = 0;
  for (size_t i = 0; i < t.n; ++i) m = std::max(m, std::fabs(double(t.at(i))));
  return m;
}

double bound(relat_dtype d) { return d == RELAT_F32 ? 1e-5 : d == RELAT_BF16 ? 1e-2 : 1e-3; }

void check(Counter &counter, Rng &rng, relat_dtype d, const Case &c) {
  const size_t nh = size_t(c.tokens * c.hidden), nu = size_t(c.vocab * c.hidden);
  const float scale = 2.f / std::sqrt(float(c.hidden));
  Tensor h = random_tensor(rng, d, nh, -1.5f * c.h_scale, 1.5f * c.h_scale);
  Tensor u = random_tensor(rng, d, nu, -scale, scale);
  if (c.integer_logits) {
    for (size_t i = 0; i < nh; ++i) store(h.data(), d, i, float(rng.integer(-100, 100)));
    for (size_t i = 0; i < nu; ++i) store(u.data(), d, i, float(rng.integer(-1, 1)));
  }
  std::vector<int64_t> targets(size_t(c.tokens));
  int64_t counted = 0;
  for (auto &t : targets) {
    t = (c.all_ignored || rng.uniform(0.f, 1.f) < c.ignored) ? kIgnore : rng.integer(0, c.vocab - 1);
    counted += t != kIgnore;
  }
  if (counted == 0 && !c.all_ignored) targets[size_t(rng.integer(0, c.tokens - 1))] = 0;
  if (c.confident) {  // h = 0.1 h + 14 U[t] / |U[t]|^2: the target's logit ~14 above the rest
    for (int64_t r = 0; r < c.tokens; ++r) {
      const int64_t t = targets[size_t(r)];
      if (t == kIgnore) continue;
      double nn = 0;
      for (int64_t k = 0; k < c.hidden; ++k) nn += double(u.at(size_t(t * c.hidden + k))) * u.at(size_t(t * c.hidden + k));
      for (int64_t k = 0; k < c.hidden; ++k) {
        const size_t i = size_t(r * c.hidden + k);
        store(h.data(), d, i, 0.1f * h.at(i) + float(14.0 * u.at(size_t(t * c.hidden + k)) / nn));
      }
    }
  }
  if (c.bad_target) targets[0] = c.vocab;  // past the vocabulary

  int64_t ws_emu = -1, ws_cpu = -1;
  relat_cuda_linear_cross_entropy_workspace_bytes(c.tokens, c.hidden, c.vocab, d, &ws_emu);
  relat_cpu_linear_cross_entropy_workspace_bytes(c.tokens, c.hidden, c.vocab, d, &ws_cpu);
  std::vector<unsigned char> w_emu(size_t(std::max<int64_t>(ws_emu, 1))),
      w_cpu(size_t(std::max<int64_t>(ws_cpu, 1)));
  Tensor dh_emu(d, nh), dh_cpu(d, nh), loss_emu(RELAT_F32, 1), loss_cpu(RELAT_F32, 1);
  poison(dh_emu);
  poison(dh_cpu);
  poison(loss_emu);
  poison(loss_cpu);
  // The emulated kernel must not rely on a clean workspace.
  for (auto &b : w_emu) b = 0xff;

  const auto t0 = std::chrono::steady_clock::now();
  const relat_status se = relat_cuda_linear_cross_entropy(
      h.data(), u.data(), targets.data(), kIgnore, static_cast<float *>(loss_emu.data()),
      dh_emu.data(), c.tokens, c.hidden, c.vocab, w_emu.data(), ws_emu, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status sc = relat_cpu_linear_cross_entropy(
      h.data(), u.data(), targets.data(), kIgnore, static_cast<float *>(loss_cpu.data()),
      dh_cpu.data(), c.tokens, c.hidden, c.vocab, w_cpu.data(), ws_cpu, d, nullptr);
  char what[200];
  std::snprintf(what, sizeof what,
                "linear_cross_entropy %s T=%lld d=%lld V=%lld counted=%lld%s |h|<=%g", dtype_name(d),
                (long long)c.tokens, (long long)c.hidden, (long long)c.vocab, (long long)counted,
                c.bad_target ? " bad-target" : "", c.integer_logits ? 100.0 : 1.5 * c.h_scale);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  const float le = loss_emu.at(0), lc = loss_cpu.at(0);
  // With confident predictions the loss (lse - logit_t) and dH ((p_t - 1) U_t + ...) are differences
  // of nearly equal terms: two fp32 evaluations agree relative to the terms' size (the logits, max
  // |U| / count), not to the small result.
  double loss_scale = std::fabs(lc), dh_terms = 0;
  if (c.confident) {
    loss_scale = 20.0;
    for (size_t i = 0; i < nu; ++i) dh_terms = std::max(dh_terms, std::fabs(double(u.at(i))));
    dh_terms /= double(std::max<int64_t>(counted, 1));
  }
  if (c.all_ignored || c.bad_target) {
    counter.check(std::isnan(le) && std::isnan(lc), "%s: loss NaN expected, emulated %g cpu %g",
                  what, le, lc);
  } else {
    counter.check(std::fabs(le - lc) <= 1e-5 * loss_scale + 1e-6,
                  "%s: loss emulated %.9g cpu %.9g [%.0f ms emulated]", what, le, lc, ms);
  }
  // dH: ignored rows exactly zero in both; the bad row NaN in both; the rest close.
  bool zeros = true, nan_rows = true;
  Tensor ge(d, nh), gc(d, nh);
  for (int64_t t = 0; t < c.tokens; ++t)
    for (int64_t k = 0; k < c.hidden; ++k) {
      const size_t i = size_t(t * c.hidden + k);
      const float a = dh_emu.at(i), b = dh_cpu.at(i);
      if (targets[size_t(t)] == kIgnore) zeros = zeros && a == 0.f && b == 0.f;
      if (c.bad_target && t == 0) nan_rows = nan_rows && std::isnan(a) && std::isnan(b);
      const bool skip = c.bad_target && t == 0;
      store(ge.data(), d, i, skip ? 0.f : a);
      store(gc.data(), d, i, skip ? 0.f : b);
    }
  counter.check(zeros, "%s: ignored rows are zero in both", what);
  if (c.bad_target) counter.check(nan_rows, "%s: the out-of-range row is NaN in both", what);
  double err = 0;
  bool any_nan = false;
  for (size_t i = 0; i < nh; ++i) {
    const double a = ge.at(i), b = gc.at(i);
    any_nan = any_nan || std::isnan(a) || std::isnan(b);
    err = std::max(err, std::fabs(a - b));
  }
  const double scale_ref = std::max(max_abs(gc), dh_terms);
  if (scale_ref > 0) {
    counter.check(!any_nan && err <= bound(d) * scale_ref,
                  "%s: dh max error %.3g of max |dh| %.3g (bound %.0e)%s", what, err / scale_ref,
                  scale_ref, bound(d), any_nan ? " NaN" : "");
  } else {
    counter.check(!any_nan && err == 0, "%s: dh all zero in both", what);
  }
}

void check_errors(Counter &counter) {
  float buf[64] = {}, loss = 0;
  int64_t t[4] = {0, 1, 2, 3}, bytes = 0;
  unsigned char ws[16];
  struct Bad {
    const char *name;
    const void *h, *u;
    const int64_t *targets;
    float *loss;
    void *dh;
    int64_t tokens, hidden, vocab, ws_bytes;
    int dtype;
  } cases[] = {
      {"h=NULL", nullptr, buf, t, &loss, buf, 4, 4, 4, 1 << 20, RELAT_F32},
      {"loss=NULL", buf, buf, t, nullptr, buf, 4, 4, 4, 1 << 20, RELAT_F32},
      {"hidden=0", buf, buf, t, &loss, buf, 4, 0, 4, 1 << 20, RELAT_F32},
      {"vocab=0", buf, buf, t, &loss, buf, 4, 4, 0, 1 << 20, RELAT_F32},
      {"tokens<0", buf, buf, t, &loss, buf, -1, 4, 4, 1 << 20, RELAT_F32},
      {"dtype=9", buf, buf, t, &loss, buf, 4, 4, 4, 1 << 20, 9},
      {"small workspace", buf, buf, t, &loss, buf, 4, 4, 4, 8, RELAT_F32},
  };
  for (const Bad &b : cases) {
    const relat_status se = relat_cuda_linear_cross_entropy(b.h, b.u, b.targets, kIgnore, b.loss,
                                                            b.dh, b.tokens, b.hidden, b.vocab, ws,
                                                            b.ws_bytes, relat_dtype(b.dtype), nullptr);
    const relat_status sc = relat_cpu_linear_cross_entropy(b.h, b.u, b.targets, kIgnore, b.loss,
                                                           b.dh, b.tokens, b.hidden, b.vocab, ws,
                                                           b.ws_bytes, relat_dtype(b.dtype), nullptr);
    counter.check(se == RELAT_ERR_INVALID_ARGUMENT && sc == RELAT_ERR_INVALID_ARGUMENT,
                  "linear_cross_entropy rejects %s: emulated %d, cpu %d", b.name, se, sc);
  }
  const relat_status se =
      relat_cuda_linear_cross_entropy_workspace_bytes(4, 4, 4, RELAT_F32, nullptr);
  const relat_status sc =
      relat_cpu_linear_cross_entropy_workspace_bytes(4, 4, 4, RELAT_F32, nullptr);
  counter.check(se == RELAT_ERR_INVALID_ARGUMENT && sc == RELAT_ERR_INVALID_ARGUMENT,
                "linear_cross_entropy_workspace_bytes rejects bytes=NULL: emulated %d, cpu %d", se,
                sc);
  // No tokens: nothing to do but write NaN, with no workspace at all.
  float l_emu = 0, l_cpu = 0;
  relat_cuda_linear_cross_entropy_workspace_bytes(0, 4, 4, RELAT_F32, &bytes);
  const relat_status z_emu = relat_cuda_linear_cross_entropy(nullptr, nullptr, nullptr, kIgnore,
                                                             &l_emu, nullptr, 0, 4, 4, nullptr, 0,
                                                             RELAT_F32, nullptr);
  const relat_status z_cpu = relat_cpu_linear_cross_entropy(nullptr, nullptr, nullptr, kIgnore,
                                                            &l_cpu, nullptr, 0, 4, 4, nullptr, 0,
                                                            RELAT_F32, nullptr);
  counter.check(bytes == 0 && z_emu == RELAT_OK && z_cpu == RELAT_OK && std::isnan(l_emu) &&
                    std::isnan(l_cpu),
                "linear_cross_entropy with no tokens: workspace %lld, emulated %d %g, cpu %d %g",
                (long long)bytes, z_emu, l_emu, z_cpu, l_cpu);
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Case cases[] = {
      {1, 8, 5, 0.0},          // one token, vocabulary below one tile
      {3, 33, 129, 0.3},       // hidden off 8/16/32, vocabulary one past a 128-row tile
      {7, 40, 300, 0.3},       // several tiles, ignored positions
      {20, 72, 257, 0.95},     // all but (about) one ignored
      {5, 16, 100, 0.0, true}, // all ignored: NaN loss, zero dh
      {6, 24, 90, 0.0, false, true},  // a target past the vocabulary
      {130, 24, 200, 0.2},     // more than one 128-row block of tokens
      {9, 64, 500, 0.0, false, false, true},  // confident predictions: tiny, cancelling gradients
      {7, 40, 300, 0.0, false, false, false, 0.f},    // all-zero h: every logit 0, loss log(V)
      {7, 40, 300, 0.0, false, false, false, 1e-20f}, // tiny h (0 in f16): logits ~1e-20
      {7, 40, 300, 0.0, false, false, false, 1.f, true},  // integer logits ~ +-300
  };
  // Adversarial runs (reduced_matrix): f16 takes the same tensor-core path as bf16; skip it there.
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Case &c : cases)
      if (!(reduced_matrix() && d == RELAT_F16)) check(counter, rng, d, c);
  // Past one chunk of the vocabulary (8192 rows at this size): the running max, sum and rescaled
  // accumulator carry across chunks.
  check(counter, rng, RELAT_F32, {4, 16, 8192 + 333, 0.25});
  check(counter, rng, RELAT_BF16, {4, 16, 8192 + 333, 0.25});
  check_errors(counter);
  return counter.finish();
}
