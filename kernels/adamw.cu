// AdamW over a list of tensors on CUDA, multi-tensor: one launch updates up to kMaxTensors tensors.
// CPU twin: native/src/adamw.cpp.
// Fused: decoupled weight decay, both moment updates, bias correction (computed on the host in
// double) and the parameter update, one read and one write of every element. The host packs the
// tensors' pointers, sizes and block offsets into the kernel's arguments (a __grid_constant__
// struct of ~24 KB; CUDA 12.1+ drivers accept 32 KB of kernel arguments on sm_70+), so there is no
// device allocation and no copy besides the launch itself. Every block updates kBlockElements
// consecutive elements of one tensor and finds its tensor by binary search over the block offsets.
// 16-byte vector accesses when a tensor's four pointers are aligned.
// Floor: bytes per element = 2*sizeof(P) + sizeof(G) + 16 (m, v read and written); ~15 FLOPs, one
//        sqrt and one divide per element: bandwidth-bound. LoRA rank 8 on Qwen3-0.6B (4.9 M fp32
//        parameters): 137 MB -> ~29 us at 4.8 TB/s.
#include <cmath>
#include <cstdint>

#include "cuda_common.cuh"
#include "validate.h"

namespace relat::cuda {
namespace {

constexpr int kMaxTensors = 512;
constexpr int kThreads = 256;
constexpr int kVec = 4;
constexpr int kBlockElements = kThreads * kVec * 4;

struct AdamWScalars {
  float decay;  // 1 - lr*weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bc2;   // sqrt(1 - beta2^step)
  float step_size;  // lr / (1 - beta1^step)
  float eps;
};

// One launch's share of the list. block_start[j] is the first block of tensor j; block_start[count]
// is the number of blocks.
struct AdamWList {
  void *p[kMaxTensors];
  const void *g[kMaxTensors];
  float *m[kMaxTensors];
  float *v[kMaxTensors];
  int64_t numel[kMaxTensors];
  int block_start[kMaxTensors + 1];
  unsigned char vec_ok[kMaxTensors];
  int count;
  AdamWScalars k;
};

template <class T, int N> struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

__device__ __forceinline__ float adamw_element(float p, float grad, float &m, float &v,
                                               const AdamWScalars &k) {
  m = k.beta1 * m + k.one_minus_beta1 * grad;
  v = k.beta2 * v + k.one_minus_beta2 * (grad * grad);
  const float denom = sqrtf(v) / k.sqrt_bc2 + k.eps;
  return p * k.decay - k.step_size * (m / denom);
}

template <class P, class G>
__global__ void __launch_bounds__(kThreads) adamw_kernel(const __grid_constant__ AdamWList list) {
  const int b = blockIdx.x;
  // Last tensor j with block_start[j] <= b (tensors with no blocks are skipped by the search).
  int lo = 0, hi = list.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (list.block_start[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  const int j = lo;
  const int64_t n = list.numel[j];
  const int64_t begin = int64_t(b - list.block_start[j]) * kBlockElements;
  const int64_t end = begin + kBlockElements < n ? begin + kBlockElements : n;
  P *p = static_cast<P *>(list.p[j]);
  const G *g = static_cast<const G *>(list.g[j]);
  float *m = list.m[j];
  float *v = list.v[j];
  const AdamWScalars k = list.k;
  int64_t e = begin + int64_t(threadIdx.x) * kVec;
  if (list.vec_ok[j]) {
    for (; e + kVec <= end; e += int64_t(kThreads) * kVec) {
      Pack<P, kVec> pv = *reinterpret_cast<const Pack<P, kVec> *>(p + e);
      const Pack<G, kVec> gv = *reinterpret_cast<const Pack<G, kVec> *>(g + e);
      Pack<float, kVec> mv = *reinterpret_cast<const Pack<float, kVec> *>(m + e);
      Pack<float, kVec> vv = *reinterpret_cast<const Pack<float, kVec> *>(v + e);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        pv.v[i] = from_f32<P>(adamw_element(to_f32(pv.v[i]), to_f32(gv.v[i]), mv.v[i], vv.v[i], k));
      *reinterpret_cast<Pack<P, kVec> *>(p + e) = pv;
      *reinterpret_cast<Pack<float, kVec> *>(m + e) = mv;
      *reinterpret_cast<Pack<float, kVec> *>(v + e) = vv;
    }
    // The tail, fewer than kVec elements at the end of the tensor, belongs to one thread.
    for (; e < end; ++e) {
      float mi = m[e], vi = v[e];
      p[e] = from_f32<P>(adamw_element(to_f32(p[e]), to_f32(g[e]), mi, vi, k));
      m[e] = mi;
      v[e] = vi;
    }
    return;
  }
  for (e = begin + threadIdx.x; e < end; e += kThreads) {
    float mi = m[e], vi = v[e];
    p[e] = from_f32<P>(adamw_element(to_f32(p[e]), to_f32(g[e]), mi, vi, k));
    m[e] = mi;
    v[e] = vi;
  }
}

bool aligned16(const void *ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

template <class P, class G>
relat_status launch_all(void *const *params, const void *const *grads, float *const *exp_avg,
                        float *const *exp_avg_sq, const int64_t *numels, int64_t count,
                        const AdamWScalars &k, relat_stream stream) {
  AdamWList list;
  list.k = k;
  int64_t j = 0;
  while (j < count) {
    // Fill one launch: up to kMaxTensors non-empty tensors and at most 2^31-1 blocks.
    int n = 0;
    int64_t blocks = 0;
    for (; j < count && n < kMaxTensors; ++j) {
      if (numels[j] == 0) continue;
      const int64_t tb = (numels[j] + kBlockElements - 1) / kBlockElements;
      if (blocks + tb > 0x7fffffff) {
        if (n == 0) return fail(RELAT_ERR_UNSUPPORTED, "adamw_step: tensor %lld is too large", (long long)j);
        break;
      }
      list.p[n] = params[j];
      list.g[n] = grads[j];
      list.m[n] = exp_avg[j];
      list.v[n] = exp_avg_sq[j];
      list.numel[n] = numels[j];
      list.block_start[n] = int(blocks);
      // A vector of kVec elements of P, G and fp32 is at most 16 bytes; checking 16-byte alignment
      // of the fp32 state and kVec*sizeof alignment of P and G covers every case.
      list.vec_ok[n] = aligned16(exp_avg[j]) && aligned16(exp_avg_sq[j]) &&
                       reinterpret_cast<uintptr_t>(params[j]) % (sizeof(P) * kVec) == 0 &&
                       reinterpret_cast<uintptr_t>(grads[j]) % (sizeof(G) * kVec) == 0;
      blocks += tb;
      ++n;
    }
    if (n == 0) break;
    list.count = n;
    list.block_start[n] = int(blocks);
    RELAT_LAUNCH(unsigned(blocks), kThreads, 0, stream, adamw_kernel<P, G>)(list);
    if (relat_status s = check_launch("adamw_step"); s != RELAT_OK) return s;
  }
  return RELAT_OK;
}

}  // namespace
}  // namespace relat::cuda

using namespace relat::cuda;

extern "C" relat_status relat_cuda_adamw_step(void *const *params, const void *const *grads,
                                              float *const *exp_avg, float *const *exp_avg_sq,
                                              const int64_t *numels, int64_t count,
                                              relat_dtype param_dtype, relat_dtype grad_dtype,
                                              double lr, double beta1, double beta2, double eps,
                                              double weight_decay, int64_t step,
                                              relat_stream stream) {
  RELAT_ON_STREAM_DEVICE("adamw_step", stream);
  if (auto m = relat::validate::adamw_step(params, grads, exp_avg, exp_avg_sq, numels, count,
                                           param_dtype, grad_dtype, lr, beta1, beta2, eps,
                                           weight_decay, step);
      !m.empty())
    return fail(RELAT_ERR_INVALID_ARGUMENT, "%s", m.c_str());
  if (count == 0) return RELAT_OK;
  const double bc1 = 1 - std::pow(beta1, double(step));
  const double bc2 = 1 - std::pow(beta2, double(step));
  const AdamWScalars k{float(1 - lr * weight_decay), float(beta1), float(1 - beta1),
                       float(beta2), float(1 - beta2), float(std::sqrt(bc2)), float(lr / bc1),
                       float(eps)};
  return dispatch_dtype(param_dtype, "adamw_step", [&](auto ptag) {
    using P = typename decltype(ptag)::type;
    if (grad_dtype == RELAT_F32)
      return launch_all<P, float>(params, grads, exp_avg, exp_avg_sq, numels, count, k, stream);
    return launch_all<P, P>(params, grads, exp_avg, exp_avg_sq, numels, count, k, stream);
  });
}
