// Embedding gather on CUDA. CPU twin: native/src/embedding.cpp.
//
// out[i, :] = table[ids[i], :], one block per output row (grid-strided), the row copied as raw
// 16/8/4/2-byte words (the copy does not depend on the dtype, only on the row's byte length and
// alignment). Bounds: an id outside [0, vocab) is never used as an address. Checking on the host
// would cost a device->host copy per call, so the kernel zero-fills that row and lowers
// *bad_position (atomicMin as unsigned; the caller initialises it to -1 = "none") for the caller
// to check when it chooses (dev.relat.ops.Embedding documents the contract). Host-resident ids,
// the usual case (they come from the tokenizer), are validated by the Java op before upload.
// Floor: bytes = n*dim*S read + n*dim*S written + n*sizeof(id); no FLOPs.
#include "cuda_common.cuh"
#include "validate.h"
#include "vector_io.cuh"

namespace relat::cuda {
namespace {

constexpr int64_t kMaxBlocks = 1 << 20;

template <class I, class W>
__global__ void embedding_kernel(const I *__restrict__ ids, int64_t n,
                                 const W *__restrict__ table, int64_t vocab, int64_t row_words,
                                 W *__restrict__ out, unsigned long long *bad_position) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t id = int64_t(ids[i]);
    W *dst = out + i * row_words;
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0 && bad_position) atomicMin(bad_position, (unsigned long long)i);
      for (int64_t j = threadIdx.x; j < row_words; j += blockDim.x) dst[j] = W{};
      continue;
    }
    const W *src = table + id * row_words;
    for (int64_t j = threadIdx.x; j < row_words; j += blockDim.x) dst[j] = src[j];
  }
}

template <class I, class W>
relat_status launch(const void *ids, int64_t n, const void *table, int64_t vocab, int64_t row_bytes,
                    void *out, int64_t *bad_position, relat_stream stream) {
  const int64_t words = row_bytes / int64_t(sizeof(W));
  const int threads = row_block_size(words, 2) > 256 ? 256 : row_block_size(words, 2);
  const int64_t blocks = n < kMaxBlocks ? n : kMaxBlocks;
  RELAT_LAUNCH(unsigned(blocks), threads, 0, stream, embedding_kernel<I, W>)(
      static_cast<const I *>(ids), n, static_cast<const W *>(table), vocab, words,
      static_cast<W *>(out), reinterpret_cast<unsigned long long *>(bad_position));
  return check_launch("embedding_forward");
}

template <class I>
relat_status launch_words(const void *ids, int64_t n, const void *table, int64_t vocab,
                          int64_t row_bytes, void *out, int64_t *bad_position,
                          relat_stream stream) {
  auto fits = [&](int64_t w) {
    return row_bytes % w == 0 && aligned_to(table, w) && aligned_to(out, w);
  };
  if (fits(16)) return launch<I, uint4>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
  if (fits(8)) return launch<I, uint2>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
  if (fits(4))
    return launch<I, unsigned int>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
  return launch<I, unsigned short>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_embedding_forward(const void *ids, relat_index_dtype id_dtype,
                                                     int64_t n, const void *table, int64_t vocab,
                                                     int64_t dim, void *out,
                                                     int64_t *bad_position, relat_dtype dtype,
                                                     relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("embedding_forward", stream);
  if (auto m = relat::validate::embedding_forward(ids, id_dtype, n, table, vocab, dim, out, dtype);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (n == 0) return RELAT_OK;
  const int64_t row_bytes = dim * (dtype == RELAT_F32 ? 4 : 2);
  if (id_dtype == RELAT_I32)
    return launch_words<int32_t>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
  return launch_words<int64_t>(ids, n, table, vocab, row_bytes, out, bad_position, stream);
}
