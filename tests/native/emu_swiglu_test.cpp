// SwiGLU forward and backward (kernels/swiglu.cu) run on the CPU through the CUDA emulation,
// against the CPU twin (native/src/swiglu.cpp): fresh random data, NaN-poisoned outputs, every
// dtype, widths off every vector size, the two layouts (separate gate / up, and the fused
// [gate | up] projection read with a leading dimension of 2*cols) and in-place gradients.
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Shape {
  int64_t rows, cols;
};

void check(Counter &counter, Rng &rng, relat_dtype d, Shape s, bool fused, bool in_place) {
  const size_t es = dtype_size(d);
  const int64_t ld = fused ? 2 * s.cols : s.cols;
  const size_t n = size_t(s.rows * s.cols), nin = size_t(s.rows * ld);
  // fused: one [rows, 2*cols] buffer; else gate and up in one [2, rows, cols] buffer.
  const Tensor in = random_tensor(rng, d, 2 * n, -6.f, 6.f);
  const Tensor dout = random_tensor(rng, d, n, -1.f, 1.f);
  auto gate = [&](const Tensor &t) { return static_cast<const char *>(t.data()); };
  auto up = [&](const Tensor &t) {
    return static_cast<const char *>(t.data()) + (fused ? size_t(s.cols) : n) * es;
  };
  char what[160];
  std::snprintf(what, sizeof what, "swiglu %s rows=%lld cols=%lld%s%s", dtype_name(d),
                (long long)s.rows, (long long)s.cols, fused ? " fused" : "",
                in_place ? " in-place" : "");
  (void)nin;

  Tensor out_emu(d, n), out_cpu(d, n);
  poison(out_emu);
  poison(out_cpu);
  relat_status se = relat_cuda_swiglu_forward(gate(in), up(in), ld, out_emu.data(), s.rows, s.cols,
                                              d, nullptr);
  relat_status sc = relat_cpu_swiglu_forward(gate(in), up(in), ld, out_cpu.data(), s.rows, s.cols,
                                             d, nullptr);
  if (counter.check(se == RELAT_OK && sc == RELAT_OK, "%s forward: status emulated %d (%s), cpu %d (%s)",
                    what, se, relat_cuda_last_error(), sc, relat_cpu_last_error())) {
    const Comparison c = compare(out_emu, out_cpu, tolerance(d));
    counter.check(c.ok, "%s: out %s", what, c.describe().c_str());
  }

  // Gradients into a buffer laid out like the input; in place: over the input itself.
  Tensor g_emu(d, 2 * n), g_cpu(d, 2 * n);
  poison(g_cpu);
  if (in_place)
    g_emu = in;
  else
    poison(g_emu);
  const Tensor &src = in_place ? g_emu : in;
  auto mgate = [&](Tensor &t) { return static_cast<char *>(t.data()); };
  auto mup = [&](Tensor &t) {
    return static_cast<char *>(t.data()) + (fused ? size_t(s.cols) : n) * es;
  };
  const auto t0 = std::chrono::steady_clock::now();
  se = relat_cuda_swiglu_backward(dout.data(), gate(src), up(src), ld, mgate(g_emu), mup(g_emu), ld,
                                  s.rows, s.cols, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  sc = relat_cpu_swiglu_backward(dout.data(), gate(in), up(in), ld, mgate(g_cpu), mup(g_cpu), ld,
                                 s.rows, s.cols, d, nullptr);
  if (counter.check(se == RELAT_OK && sc == RELAT_OK, "%s backward: status emulated %d (%s), cpu %d (%s)",
                    what, se, relat_cuda_last_error(), sc, relat_cpu_last_error())) {
    const Comparison c = compare(g_emu, g_cpu, tolerance(d));
    counter.check(c.ok, "%s: dgate|dup %s [%.0f ms emulated]", what, c.describe().c_str(), ms);
  }
}

void check_errors(Counter &counter) {
  float buf[16] = {}, out[16];
  struct Case {
    const char *name;
    const void *gate;
    int64_t ld, rows, cols;
    relat_status want;
  } cases[] = {
      {"ld_in < cols", buf, 3, 2, 4, RELAT_ERR_INVALID_ARGUMENT},
      {"gate=NULL", nullptr, 4, 2, 4, RELAT_ERR_INVALID_ARGUMENT},
      {"cols=0", buf, 4, 2, 0, RELAT_ERR_INVALID_ARGUMENT},
      {"rows=0", nullptr, 4, 0, 4, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se =
        relat_cuda_swiglu_forward(c.gate, buf, c.ld, out, c.rows, c.cols, RELAT_F32, nullptr);
    const relat_status sc =
        relat_cpu_swiglu_forward(c.gate, buf, c.ld, out, c.rows, c.cols, RELAT_F32, nullptr);
    const relat_status be = relat_cuda_swiglu_backward(buf, c.gate, buf, c.ld, out, out, c.ld,
                                                       c.rows, c.cols, RELAT_F32, nullptr);
    const relat_status bc = relat_cpu_swiglu_backward(buf, c.gate, buf, c.ld, out, out, c.ld,
                                                      c.rows, c.cols, RELAT_F32, nullptr);
    counter.check(se == c.want && sc == c.want && be == c.want && bc == c.want,
                  "swiglu rejects %s: emulated %d/%d, cpu %d/%d, want %d", c.name, se, be, sc, bc,
                  c.want);
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const Shape shapes[] = {{1, 1},   {1, 7},    {3, 31},  {2, 32},  {4, 33},   {5, 100},
                          {2, 129}, {3, 1000}, {1, 3072}, {2, 4097}, {16, 768}};
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (const Shape &s : shapes) {
      check(counter, rng, d, s, false, false);
      check(counter, rng, d, s, true, false);
    }
  for (relat_dtype d : {RELAT_F32, RELAT_BF16})
    for (const Shape &s : {Shape{3, 256}, Shape{2, 77}}) {
      check(counter, rng, d, s, false, true);
      check(counter, rng, d, s, true, true);
    }
  check_errors(counter);
  return counter.finish();
}
