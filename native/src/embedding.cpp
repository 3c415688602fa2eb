// Embedding gather: CPU twin of kernels/embedding.cu.
//
// out[i, :] = table[ids[i], :]. Every id is checked against [0, vocab) before any row is read, so
// a bad id is reported (position and value) and never read past; then rows are copied with memcpy
// (the copy is dtype-agnostic: only the element size matters), spread over threads when the total
// is large enough. Nothing is fused beyond the check: libtorch's embedding / index_select do the
// same copy; the point is the contract on bad ids, shared with the CUDA kernel.
// Floor: bytes = n * dim * S read (scattered rows) + n * dim * S written + n * sizeof(id).
#include <cstring>

#include "cpu_common.h"
#include "validate.h"

namespace relat::cpu {
namespace {

template <class I> int64_t first_bad(const I *ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = int64_t(ids[i]);
    if (id < 0 || id >= vocab) return i;
  }
  return -1;
}

template <class I>
void gather(const I *ids, int64_t n, const char *table, int64_t row_bytes, char *out) {
#pragma omp parallel for schedule(static) if (n * row_bytes >= 4 * kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * row_bytes, table + int64_t(ids[i]) * row_bytes, size_t(row_bytes));
}

int64_t element_size(relat_dtype d) { return d == RELAT_F32 ? 4 : 2; }

}  // namespace
}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_embedding_forward(const void *ids, relat_index_dtype id_dtype,
                                                    int64_t n, const void *table, int64_t vocab,
                                                    int64_t dim, void *out, int64_t *bad_position,
                                                    relat_dtype dtype, relat_stream) {
  if (auto m = relat::validate::embedding_forward(ids, id_dtype, n, table, vocab, dim, out, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (n == 0) return RELAT_OK;
  const int64_t bad = id_dtype == RELAT_I32 ? first_bad(static_cast<const int32_t *>(ids), n, vocab)
                                            : first_bad(static_cast<const int64_t *>(ids), n, vocab);
  if (bad >= 0) {
    if (bad_position && uint64_t(bad) < uint64_t(*bad_position)) *bad_position = bad;
    const int64_t id = id_dtype == RELAT_I32 ? static_cast<const int32_t *>(ids)[bad]
                                             : static_cast<const int64_t *>(ids)[bad];
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s",
                relat::validate::embedding_bad_id(bad, id, vocab).c_str());
  }
  const int64_t row_bytes = dim * element_size(dtype);
  const char *tb = static_cast<const char *>(table);
  char *ob = static_cast<char *>(out);
  if (id_dtype == RELAT_I32)
    gather(static_cast<const int32_t *>(ids), n, tb, row_bytes, ob);
  else
    gather(static_cast<const int64_t *>(ids), n, tb, row_bytes, ob);
  return RELAT_OK;
}
