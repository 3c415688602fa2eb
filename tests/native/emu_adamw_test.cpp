// AdamW: kernels/adamw.cu run on the CPU through the CUDA emulation, against its CPU twin
// native/src/adamw.cpp, over several steps: lists of awkwardly sized tensors (empty, one element,
// not multiples of the vector width, larger than a block's share), every param dtype with grads in
// the params' dtype or fp32, misaligned tensors (the kernel's scalar path), weight decay, and more
// tensors than one launch carries (the wrapper splits the list).
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct List {
  std::vector<Tensor> p, g, m, v;
  std::vector<int64_t> numel;
  std::vector<int64_t> offset;  // elements skipped at the start of every buffer (misalignment)
};

List make_list(Rng &rng, relat_dtype pd, relat_dtype gd, const std::vector<int64_t> &sizes,
               bool misaligned) {
  List l;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t off = misaligned ? 1 + int64_t(i % 3) : 0;
    const size_t n = size_t(sizes[i] + off);
    l.p.push_back(random_tensor(rng, pd, n, -2.f, 2.f));
    l.g.push_back(random_tensor(rng, gd, n, -1.f, 1.f));
    l.m.push_back(random_tensor(rng, RELAT_F32, n, -0.1f, 0.1f));
    l.v.push_back(random_tensor(rng, RELAT_F32, n, 0.f, 0.01f));
    l.numel.push_back(sizes[i]);
    l.offset.push_back(off);
  }
  return l;
}

struct Pointers {
  std::vector<void *> p;
  std::vector<const void *> g;
  std::vector<float *> m, v;
};

Pointers pointers(List &l) {
  Pointers ptr;
  for (size_t i = 0; i < l.p.size(); ++i) {
    const int64_t o = l.offset[i];
    ptr.p.push_back(static_cast<unsigned char *>(l.p[i].data()) + o * dtype_size(l.p[i].dtype));
    ptr.g.push_back(static_cast<unsigned char *>(l.g[i].data()) + o * dtype_size(l.g[i].dtype));
    ptr.m.push_back(static_cast<float *>(l.m[i].data()) + o);
    ptr.v.push_back(static_cast<float *>(l.v[i].data()) + o);
  }
  return ptr;
}

void check(Counter &counter, Rng &rng, relat_dtype pd, relat_dtype gd,
           const std::vector<int64_t> &sizes, bool misaligned, double wd, const char *label) {
  List emu = make_list(rng, pd, gd, sizes, misaligned);
  List cpu = emu;
  Pointers pe = pointers(emu), pc = pointers(cpu);
  const int64_t count = int64_t(sizes.size());
  char what[160];
  std::snprintf(what, sizeof what, "adamw %s params %s grads %s wd=%g", label, dtype_name(pd),
                dtype_name(gd), wd);
  double ms = 0;
  for (int64_t step = 1; step <= 3; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const relat_status se =
        relat_cuda_adamw_step(pe.p.data(), pe.g.data(), pe.m.data(), pe.v.data(), emu.numel.data(),
                              count, pd, gd, 1e-2, 0.9, 0.999, 1e-8, wd, step, nullptr);
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const relat_status sc =
        relat_cpu_adamw_step(pc.p.data(), pc.g.data(), pc.m.data(), pc.v.data(), cpu.numel.data(),
                             count, pd, gd, 1e-2, 0.9, 0.999, 1e-8, wd, step, nullptr);
    if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s step %lld: status emulated %d (%s), cpu %d (%s)",
                       what, (long long)step, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
      return;
  }
  int bad = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const Comparison cp = compare(emu.p[i], cpu.p[i], tolerance(pd));
    const Comparison cm = compare(emu.m[i], cpu.m[i], tolerance(RELAT_F32));
    const Comparison cv = compare(emu.v[i], cpu.v[i], tolerance(RELAT_F32));
    if (!(cp.ok && cm.ok && cv.ok)) {
      if (bad++ < 3)
        counter.check(false, "%s tensor %zu (%lld elements): p %s, m %s, v %s", what, i,
                      (long long)sizes[i], cp.describe().c_str(), cm.describe().c_str(),
                      cv.describe().c_str());
    }
  }
  counter.check(bad == 0, "%s: %zu tensors, 3 steps, %d differ [%.0f ms emulated]", what,
                sizes.size(), bad, ms);
}

void check_errors(Counter &counter) {
  float buf[4] = {};
  void *p[1] = {buf};
  const void *g[1] = {buf};
  float *m[1] = {buf}, *mnull[1] = {nullptr};
  int64_t numel[1] = {4}, negative[1] = {-1};
  struct Case {
    const char *name;
    float *const *m;
    const int64_t *numel;
    int64_t count;
    relat_dtype pd, gd;
    double lr, beta1, eps;
    int64_t step;
    relat_status want;
  } cases[] = {
      {"step 0", m, numel, 1, RELAT_F32, RELAT_F32, 1e-3, 0.9, 1e-8, 0, RELAT_ERR_INVALID_ARGUMENT},
      {"beta1 1", m, numel, 1, RELAT_F32, RELAT_F32, 1e-3, 1.0, 1e-8, 1, RELAT_ERR_INVALID_ARGUMENT},
      {"lr NaN", m, numel, 1, RELAT_F32, RELAT_F32, std::nan(""), 0.9, 1e-8, 1,
       RELAT_ERR_INVALID_ARGUMENT},
      {"eps<0", m, numel, 1, RELAT_F32, RELAT_F32, 1e-3, 0.9, -1, 1, RELAT_ERR_INVALID_ARGUMENT},
      {"bf16 params, f16 grads", m, numel, 1, RELAT_BF16, RELAT_F16, 1e-3, 0.9, 1e-8, 1,
       RELAT_ERR_INVALID_ARGUMENT},
      {"exp_avg[0] NULL", mnull, numel, 1, RELAT_F32, RELAT_F32, 1e-3, 0.9, 1e-8, 1,
       RELAT_ERR_INVALID_ARGUMENT},
      {"numel<0", m, negative, 1, RELAT_F32, RELAT_F32, 1e-3, 0.9, 1e-8, 1,
       RELAT_ERR_INVALID_ARGUMENT},
      {"count 0", nullptr, nullptr, 0, RELAT_F32, RELAT_F32, 1e-3, 0.9, 1e-8, 1, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_adamw_step(c.count ? p : nullptr, c.count ? g : nullptr, c.m,
                                                  c.m, c.numel, c.count, c.pd, c.gd, c.lr, c.beta1,
                                                  0.999, c.eps, 0, c.step, nullptr);
    const std::string emu_msg = relat_cuda_last_error();
    const relat_status sc = relat_cpu_adamw_step(c.count ? p : nullptr, c.count ? g : nullptr, c.m,
                                                 c.m, c.numel, c.count, c.pd, c.gd, c.lr, c.beta1,
                                                 0.999, c.eps, 0, c.step, nullptr);
    counter.check(se == c.want && sc == c.want && emu_msg == relat_cpu_last_error(),
                  "adamw rejects %s: emulated %d, cpu %d, want %d (\"%s\")", c.name, se, sc, c.want,
                  relat_cpu_last_error());
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  const std::vector<int64_t> awkward = {1, 0, 7, 3, 33, 129, 4095, 4096, 4097, 10001, 2, 0, 257};
  const relat_dtype pairs[][2] = {{RELAT_F32, RELAT_F32},   {RELAT_BF16, RELAT_BF16},
                                  {RELAT_BF16, RELAT_F32},  {RELAT_F16, RELAT_F16},
                                  {RELAT_F16, RELAT_F32}};
  for (const auto &pg : pairs) check(counter, rng, pg[0], pg[1], awkward, false, 0.0, "awkward");
  check(counter, rng, RELAT_F32, RELAT_F32, awkward, false, 0.1, "awkward");
  for (const auto &pg : pairs) check(counter, rng, pg[0], pg[1], awkward, true, 0.0, "misaligned");
  // More tensors than one launch carries (512): the list is split over launches.
  std::vector<int64_t> many;
  for (int i = 0; i < 600; ++i) many.push_back(rng.integer(0, 40));
  check(counter, rng, RELAT_F32, RELAT_F32, many, false, 0.0, "600 tensors");
  check_errors(counter);
  return counter.finish();
}
