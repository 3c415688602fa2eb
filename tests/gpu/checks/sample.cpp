// Token sampling (kernels/sample.cu) against the CPU twin (native/src/sample.cpp), and its timings.
#include <cuda_runtime.h>

#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

struct SampleSetting {
  const char *name;
  float temperature;
  int64_t top_k;
  float top_p;
};
const SampleSetting kSampleSettings[] = {
    {"greedy", 0.f, 0, 1.f},  {"temperature", 0.7f, 0, 1.f},  {"topk", 0.6f, 20, 1.f},
    {"topp", 0.6f, 0, 0.95f}, {"topk_topp", 0.6f, 20, 0.95f}, {"topk3000", 1.3f, 3000, 0.5f}};

// The ids must equal the CPU twin's exactly (relat.h: one function, computed bit for bit).
void check_sample(Counter &c, Rng &rng, relat_dtype d, int64_t rows, int64_t vocab, bool peaked) {
  Tensor logits(d, size_t(rows * vocab));
  for (size_t i = 0; i < logits.n; ++i) {
    const float v =
        peaked ? (rng.integer(0, 199) == 0 ? rng.uniform(10.f, 14.f) : rng.uniform(-30.f, -5.f))
               : float(rng.integer(-40, 40)) * 0.25f;  // many ties
    store(logits.data(), d, i, v);
  }
  int64_t ws_bytes = 0;
  relat_cpu_sample_workspace_bytes(rows, vocab, &ws_bytes);
  std::vector<unsigned char> ws(static_cast<size_t>(ws_bytes));
  DeviceBuffer dl(logits), dout(size_t(rows) * 8);
  for (const SampleSetting &s : kSampleSettings) {
    for (uint64_t step = 0; step < 3; ++step) {
      std::vector<int64_t> got(static_cast<size_t>(rows), -1), want(static_cast<size_t>(rows), -2);
      const relat_status st =
          relat_cuda_sample(dl.get(), rows, vocab, vocab, s.temperature, s.top_k, s.top_p, 99, step,
                            static_cast<int64_t *>(dout.get()), nullptr, 0, d, nullptr);
      const cudaError_t sync = cudaDeviceSynchronize();
      relat_cpu_sample(logits.data(), rows, vocab, vocab, s.temperature, s.top_k, s.top_p, 99, step,
                       want.data(), ws.data(), ws_bytes, d, nullptr);
      char what[128];
      std::snprintf(what, sizeof what, "sample %s %s %s rows=%lld vocab=%lld step=%llu", s.name,
                    dtype_name(d), peaked ? "peaked" : "ties", (long long)rows, (long long)vocab,
                    (unsigned long long)step);
      if (!device_ok(c, what, st, sync)) continue;
      dout.download_raw(got.data(), got.size() * 8);
      int differ = 0;
      for (size_t r = 0; r < got.size(); ++r) differ += got[r] != want[r];
      c.check(differ == 0, "%s: %d rows differ from the CPU twin", what, differ);
    }
  }
}

void bench_sample(FILE *csv, Rng &rng, const SampleSetting &s, int64_t rows) {
  const int64_t vocab = kQwenVocab;
  DeviceBuffer dl(timing_tensor(rng, RELAT_F32, size_t(rows * vocab), -9.f, 9.f)),
      dout(size_t(rows) * 8);
  uint64_t step = 0;
  const double us = timed_us("sample", [&] {
    return relat_cuda_sample(dl.get(), rows, vocab, vocab, s.temperature, s.top_k, s.top_p, 1234,
                             step++, static_cast<int64_t *>(dout.get()), nullptr, 0, RELAT_F32,
                             nullptr);
  });
  const double bytes = double(rows) * double(vocab) * 4;  // one read of the logits
  std::fprintf(csv, "sample_%s,f32,%lld,%lld,%.3f,%.0f,0\n", s.name, (long long)rows,
               (long long)vocab, us, bytes);
  std::printf("sample_%s f32 rows=%lld vocab=%lld: %.1f us\n", s.name, (long long)rows,
              (long long)vocab, us);
}

void check(Counter &c, Rng &rng, bool quick) {
  for (relat_dtype d : kDtypes) {
    for (int64_t vocab : {1, 7, 50, 1000, 4099}) {
      check_sample(c, rng, d, 3, vocab, false);
      check_sample(c, rng, d, 3, vocab, true);
    }
  }
  if (!quick) {
    for (relat_dtype d : {RELAT_F32, RELAT_BF16}) {
      check_sample(c, rng, d, 4, kQwenVocab, false);
      check_sample(c, rng, d, 4, kQwenVocab, true);
    }
  }
}

void bench(FILE *csv, Rng &rng) {
  for (const SampleSetting &s : kSampleSettings)
    for (int64_t rows : {1, 64}) bench_sample(csv, rng, s, rows);
}

}  // namespace

RELAT_GPU_OP("sample", check, bench);
