// Embedding gather (kernels/embedding.cu) run on the CPU through the CUDA emulation, against the
// CPU twin (native/src/embedding.cpp): random int32 / int64 ids, every dtype, row lengths that
// select each copy width (16, 8, 4 and 2 bytes), NaN-poisoned outputs; and the bad-id contract:
// the CPU twin fails before writing anything, the kernel zero-fills the bad rows, copies the good
// ones and lowers the flag to the smallest bad position (never reading past the table, which ASan
// would report).
#include <chrono>

#include "test_util.h"

using namespace relat::test;

namespace {

struct Ids {
  relat_index_dtype type;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  const void *data() const {
    return type == RELAT_I32 ? static_cast<const void *>(i32.data()) : i64.data();
  }
  void set(size_t i, int64_t v) {
    if (type == RELAT_I32)
      i32[i] = int32_t(v);
    else
      i64[i] = v;
  }
};

Ids random_ids(Rng &rng, relat_index_dtype type, size_t n, int64_t vocab) {
  Ids ids{type, {}, {}};
  if (type == RELAT_I32)
    ids.i32.resize(n);
  else
    ids.i64.resize(n);
  for (size_t i = 0; i < n; ++i) ids.set(i, rng.integer(0, vocab - 1));
  return ids;
}

int64_t id_at(const Ids &ids, size_t i) { return ids.type == RELAT_I32 ? ids.i32[i] : ids.i64[i]; }

bool bits_equal(const Tensor &a, const Tensor &b) {
  return a.size_bytes() == b.size_bytes() &&
         std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

void check(Counter &counter, Rng &rng, relat_dtype d, relat_index_dtype it, int64_t n,
           int64_t vocab, int64_t dim) {
  const Tensor table = random_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f);
  const Ids ids = random_ids(rng, it, size_t(n), vocab);
  Tensor out_emu(d, size_t(n * dim)), out_cpu(d, size_t(n * dim));
  poison(out_emu);
  poison(out_cpu);
  int64_t flag_emu = -1, flag_cpu = -1;
  const auto t0 = std::chrono::steady_clock::now();
  const relat_status se = relat_cuda_embedding_forward(ids.data(), it, n, table.data(), vocab, dim,
                                                       out_emu.data(), &flag_emu, d, nullptr);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const relat_status sc = relat_cpu_embedding_forward(ids.data(), it, n, table.data(), vocab, dim,
                                                      out_cpu.data(), &flag_cpu, d, nullptr);
  char what[160];
  std::snprintf(what, sizeof what, "embedding %s ids=%s n=%lld vocab=%lld dim=%lld", dtype_name(d),
                it == RELAT_I32 ? "i32" : "i64", (long long)n, (long long)vocab, (long long)dim);
  if (!counter.check(se == RELAT_OK && sc == RELAT_OK, "%s: status emulated %d (%s), cpu %d (%s)",
                     what, se, relat_cuda_last_error(), sc, relat_cpu_last_error()))
    return;
  counter.check(bits_equal(out_emu, out_cpu) && flag_emu == -1 && flag_cpu == -1,
                "%s: rows copied bit for bit, flags %lld/%lld [%.0f ms emulated]", what,
                (long long)flag_emu, (long long)flag_cpu, ms);
}

void check_bad_ids(Counter &counter, Rng &rng, relat_dtype d, relat_index_dtype it) {
  const int64_t n = 9, vocab = 50, dim = 33;
  const Tensor table = random_tensor(rng, d, size_t(vocab * dim), -2.f, 2.f);
  Ids ids = random_ids(rng, it, size_t(n), vocab);
  ids.set(6, vocab);        // one past the end
  ids.set(3, -1);           // negative: the first bad position
  ids.set(8, 1LL << 30);    // far past the end
  Tensor out_emu(d, size_t(n * dim)), out_cpu(d, size_t(n * dim));
  poison(out_emu);
  poison(out_cpu);
  int64_t flag_emu = -1, flag_cpu = -1;
  const relat_status se = relat_cuda_embedding_forward(ids.data(), it, n, table.data(), vocab, dim,
                                                       out_emu.data(), &flag_emu, d, nullptr);
  const relat_status sc = relat_cpu_embedding_forward(ids.data(), it, n, table.data(), vocab, dim,
                                                      out_cpu.data(), &flag_cpu, d, nullptr);
  const std::string msg = relat_cpu_last_error();
  bool rows_ok = true;
  const size_t row_bytes = size_t(dim) * dtype_size(d);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char *got = static_cast<const unsigned char *>(out_emu.data()) + i * row_bytes;
    const int64_t id = id_at(ids, size_t(i));
    if (id < 0 || id >= vocab) {
      for (size_t b = 0; b < row_bytes; ++b) rows_ok = rows_ok && got[b] == 0;
    } else {
      rows_ok = rows_ok && std::memcmp(got, static_cast<const unsigned char *>(table.data()) +
                                                id * int64_t(row_bytes),
                                       row_bytes) == 0;
    }
  }
  bool cpu_untouched = true;
  for (size_t i = 0; i < out_cpu.n; ++i) cpu_untouched = cpu_untouched && std::isnan(out_cpu.at(i));
  const char *tn = it == RELAT_I32 ? "i32" : "i64";
  counter.check(se == RELAT_OK && flag_emu == 3 && rows_ok,
                "embedding %s %s bad ids, emulated: status %d, flag %lld (want 3), rows %s",
                dtype_name(d), tn, se, (long long)flag_emu, rows_ok ? "ok" : "wrong");
  counter.check(sc == RELAT_ERR_INVALID_ARGUMENT && flag_cpu == 3 && cpu_untouched &&
                    msg == "embedding_forward: ids[3] = -1 is out of range [0, 50)",
                "embedding %s %s bad ids, cpu: status %d, flag %lld, out %s, message '%s'",
                dtype_name(d), tn, sc, (long long)flag_cpu,
                cpu_untouched ? "untouched" : "written", msg.c_str());
  // The flag is sticky: a lower position recorded earlier stays; a clean call leaves it alone.
  flag_emu = 2;
  relat_cuda_embedding_forward(ids.data(), it, n, table.data(), vocab, dim, out_emu.data(),
                               &flag_emu, d, nullptr);
  int64_t clean = -1;
  Ids good = random_ids(rng, it, size_t(n), vocab);
  relat_cuda_embedding_forward(good.data(), it, n, table.data(), vocab, dim, out_emu.data(), &clean,
                               d, nullptr);
  counter.check(flag_emu == 2 && clean == -1, "embedding %s %s flag sticky: %lld, clean call: %lld",
                dtype_name(d), tn, (long long)flag_emu, (long long)clean);
}

void check_errors(Counter &counter) {
  int64_t ids[2] = {0, 1};
  float table[8] = {}, out[8];
  struct Case {
    const char *name;
    int id_type;
    int64_t n, vocab, dim;
    relat_status want;
  } cases[] = {
      {"index dtype 5", 5, 2, 2, 4, RELAT_ERR_INVALID_ARGUMENT},
      {"vocab=0", RELAT_I64, 2, 0, 4, RELAT_ERR_INVALID_ARGUMENT},
      {"dim=0", RELAT_I64, 2, 2, 0, RELAT_ERR_INVALID_ARGUMENT},
      {"n<0", RELAT_I64, -1, 2, 4, RELAT_ERR_INVALID_ARGUMENT},
      {"n=0", RELAT_I64, 0, 2, 4, RELAT_OK},
  };
  for (const Case &c : cases) {
    const relat_status se = relat_cuda_embedding_forward(ids, relat_index_dtype(c.id_type), c.n,
                                                         table, c.vocab, c.dim, out, nullptr,
                                                         RELAT_F32, nullptr);
    const relat_status sc = relat_cpu_embedding_forward(ids, relat_index_dtype(c.id_type), c.n,
                                                        table, c.vocab, c.dim, out, nullptr,
                                                        RELAT_F32, nullptr);
    counter.check(se == c.want && sc == c.want, "embedding rejects %s: emulated %d, cpu %d, want %d",
                  c.name, se, sc, c.want);
  }
}

}  // namespace

int main() {
  Rng rng(test_seed());
  Counter counter;
  struct Case {
    int64_t n, vocab, dim;
  } cases[] = {{1, 1, 1}, {5, 7, 3}, {7, 100, 4}, {3, 10, 8}, {33, 97, 129}, {16, 200, 1024},
               {4, 13, 4099}};
  for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16})
    for (relat_index_dtype it : {RELAT_I32, RELAT_I64}) {
      for (const Case &c : cases) check(counter, rng, d, it, c.n, c.vocab, c.dim);
      check_bad_ids(counter, rng, d, it);
    }
  check_errors(counter);
  return counter.finish();
}
