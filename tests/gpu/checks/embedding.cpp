// Embedding gather (kernels/embedding.cu), with bad ids, against the CPU twin
// (native/src/embedding.cpp), and its timings.
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "gpu_check.h"

namespace {

using namespace relat::gpu_check;

void check_embedding(Counter &c, Rng &rng, relat_dtype d, int64_t n, int64_t vocab, int64_t dim) {
  const Tensor table = random_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t &id : ids) id = rng.integer(0, vocab - 1);
  const int64_t bad = n / 2;
  ids[size_t(bad)] = vocab;  // out of range: zero row, flag = bad
  Tensor out(d, size_t(n * dim)), want(d, size_t(n * dim));
  poison(out);
  DeviceBuffer btable(table), bout(out), bids(ids.size() * 8), bflag(8);
  cuda_ok(cudaMemcpy(bids.get(), ids.data(), ids.size() * 8, cudaMemcpyHostToDevice), "ids");
  const int64_t minus_one = -1;
  cuda_ok(cudaMemcpy(bflag.get(), &minus_one, 8, cudaMemcpyHostToDevice), "flag");
  const relat_status s =
      relat_cuda_embedding_forward(bids.get(), RELAT_I64, n, btable.get(), vocab, dim, bout.get(),
                                   static_cast<int64_t *>(bflag.get()), d, nullptr);
  const cudaError_t sync = cudaDeviceSynchronize();
  char what[112];
  std::snprintf(what, sizeof what, "embedding %s n=%lld vocab=%lld dim=%lld", dtype_name(d),
                (long long)n, (long long)vocab, (long long)dim);
  if (!device_ok(c, what, s, sync)) return;
  int64_t flag = 0;
  cuda_ok(cudaMemcpy(&flag, bflag.get(), 8, cudaMemcpyDeviceToHost), "flag");
  bout.download(out);
  // The expected output: the CPU twin on the good ids, zeros for the bad row.
  std::vector<int64_t> good = ids;
  good[size_t(bad)] = 0;
  relat_cpu_embedding_forward(good.data(), RELAT_I64, n, table.data(), vocab, dim, want.data(),
                              nullptr, d, nullptr);
  std::memset(static_cast<char *>(want.data()) + size_t(bad * dim) * dtype_size(d), 0,
              size_t(dim) * dtype_size(d));
  const bool same = std::memcmp(out.data(), want.data(), out.size_bytes()) == 0;
  c.check(same && flag == bad, "%s: rows %s, flag %lld (want %lld)", what,
          same ? "equal" : "differ", (long long)flag, (long long)bad);
}

void bench_embedding(FILE *csv, Rng &rng, relat_dtype d, int64_t n, int64_t dim) {
  const int64_t vocab = kQwenVocab;
  const size_t es = dtype_size(d);
  DeviceBuffer table(timing_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f)),
      out(size_t(n * dim) * es), ids(size_t(n) * 8);
  std::vector<int64_t> h(static_cast<size_t>(n));
  for (int64_t &id : h) id = rng.integer(0, vocab - 1);
  cuda_ok(cudaMemcpy(ids.get(), h.data(), h.size() * 8, cudaMemcpyHostToDevice), "ids");
  bench_one(csv, "embedding", d, n, dim, 2.0 * double(n * dim) * es + n * 8.0, [&] {
    return relat_cuda_embedding_forward(ids.get(), RELAT_I64, n, table.get(), vocab, dim, out.get(),
                                        nullptr, d, nullptr);
  });
}

void check(Counter &c, Rng &rng, bool quick) {
  for (relat_dtype d : kDtypes) {
    check_embedding(c, rng, d, 1, 1, 1);
    check_embedding(c, rng, d, 33, 97, 129);
    check_embedding(c, rng, d, quick ? 64 : 4096, 5000, 1024);
  }
}

void bench(FILE *csv, Rng &rng) {
  // Rows of a 151936-row table.
  for (relat_dtype d : {RELAT_BF16, RELAT_F32}) {
    bench_embedding(csv, rng, d, 16384, 1024);
    bench_embedding(csv, rng, d, 16384, 4096);
  }
}

}  // namespace

RELAT_GPU_OP("embedding", check, bench);
