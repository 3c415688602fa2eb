// Unit tests of the CUDA emulation itself, written as a CUDA source (kernels + host code) and
// compiled like the kernels, under cuda_emu.h: built-in indices, barriers, shuffles (PTX lane
// rules), votes, atomics, static and dynamic shared memory, launch errors, and the faults the
// emulation must report (divergent barriers, mismatched warp primitives, deadlocks).
#include <pthread.h>

#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "cpu_common.h"
#include "test_util.h"

using relat::test::Counter;

namespace {

static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 layout");
static_assert(sizeof(int2) == 8 && alignof(int2) == 8, "int2 layout");
static_assert(sizeof(float3) == 12 && alignof(float3) == 4, "float3 layout");
static_assert(sizeof(__nv_bfloat162) == 4 && alignof(__nv_bfloat162) == 4, "bf162 layout");

template <class T> T *device_alloc(size_t n, int fill_byte = 0) {
  T *p = nullptr;
  cudaMalloc(&p, n * sizeof(T));
  cudaMemset(p, fill_byte, n * sizeof(T));
  return p;
}

bool launch_ok(Counter &c, const char *what) {
  const cudaError_t e = cudaGetLastError();
  return c.check(e == cudaSuccess, "%s: launch %s", what, cudaGetErrorName(e));
}

// Expects the last launch to have faulted with a message containing `needle`, then resets.
void expect_fault(Counter &c, const char *what, const char *needle) {
  const cudaError_t e = cudaGetLastError();
  const std::string msg = relat_emu::last_fault();
  c.check(e == cudaErrorLaunchFailure && msg.find(needle) != std::string::npos,
          "%s: detected (%s; \"%s\")", what, cudaGetErrorName(e), msg.c_str());
  cudaDeviceReset();
}

// ---- built-in variables -------------------------------------------------------------------------
__global__ void builtins_kernel(unsigned *out) {
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned nthreads = blockDim.x * blockDim.y * blockDim.z;
  out[b * nthreads + t] = (blockIdx.x << 24) | (blockIdx.y << 20) | (blockIdx.z << 16) |
                          (threadIdx.x << 8) | (threadIdx.y << 4) | threadIdx.z;
}

void test_builtins(Counter &c) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const unsigned n = 3 * 2 * 2 * 4 * 3 * 2;
  unsigned *out = device_alloc<unsigned>(n, 0xff);
  RELAT_LAUNCH(grid, block, 0, nullptr, builtins_kernel)(out);
  if (!launch_ok(c, "3-D builtins")) return;
  int bad = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx) {
              const unsigned b = bx + 3 * (by + 2 * bz), t = tx + 4 * (ty + 3 * tz);
              const unsigned want =
                  (bx << 24) | (by << 20) | (bz << 16) | (tx << 8) | (ty << 4) | tz;
              bad += out[b * 24 + t] != want;
            }
  c.check(bad == 0, "3-D gridDim/blockDim/blockIdx/threadIdx: %d wrong", bad);
  cudaFree(out);
}

// Each thread gets its own copy of the parameters.
__global__ void param_copy_kernel(int n, int *out) {
  n += int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = n;
}

void test_params(Counter &c) {
  int *out = device_alloc<int>(64);
  RELAT_LAUNCH(1, 64, 0, nullptr, param_copy_kernel)(int64_t(100), out);  // int64_t -> int, as nvcc
  int bad = 0;
  for (int i = 0; i < 64; ++i) bad += out[i] != 100 + i;
  c.check(launch_ok(c, "params") && bad == 0, "kernel parameters are per-thread copies: %d wrong",
          bad);
  cudaFree(out);
}

// A __grid_constant__ struct of ~24 KiB (the multi-tensor AdamW's pointer lists), indexed with
// values known only at run time.
struct BigParams {
  int values[6000];
  int count;
};

__global__ void grid_constant_kernel(const __grid_constant__ BigParams p, int *out) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < p.count) out[i] = p.values[(i * 7919) % p.count];
}

void test_grid_constant(Counter &c) {
  static BigParams p;
  p.count = 6000;
  for (int i = 0; i < p.count; ++i) p.values[i] = i * 3 + 1;
  int *out = device_alloc<int>(6000);
  RELAT_LAUNCH(24, 256, 0, nullptr, grid_constant_kernel)(p, out);
  int bad = 0;
  for (int i = 0; i < p.count; ++i) bad += out[i] != ((i * 7919) % p.count) * 3 + 1;
  c.check(launch_ok(c, "grid_constant") && bad == 0,
          "a 24 KiB __grid_constant__ parameter, indexed at run time: %d wrong", bad);
  cudaFree(out);
}

// ---- barriers -----------------------------------------------------------------------------------
template <bool Barrier> __global__ void exchange_kernel(int *out) {
  __shared__ int s[256];
  const int t = int(threadIdx.x);
  s[t] = t * 3 + int(blockIdx.x);
  if (Barrier) __syncthreads();
  out[blockIdx.x * 256 + t] = s[(t + 1) % 256];
}

__global__ void barrier_reduce_kernel(int *out) {
  const int t = int(threadIdx.x);
  out[0 * 1024 + t] = __syncthreads_count(t % 3 == 0);
  out[1 * 1024 + t] = __syncthreads_and(t < 1000);
  out[2 * 1024 + t] = __syncthreads_and(t >= 0);
  out[3 * 1024 + t] = __syncthreads_or(t == 777);
  out[4 * 1024 + t] = __syncthreads_or(0);
}

void test_barriers(Counter &c) {
  const int blocks = 16, n = blocks * 256;
  int *out = device_alloc<int>(n);
  auto wrong = [&] {
    int bad = 0;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < 256; ++t) bad += out[b * 256 + t] != ((t + 1) % 256) * 3 + b;
    return bad;
  };
  RELAT_LAUNCH(blocks, 256, 0, nullptr, exchange_kernel<true>)(out);
  launch_ok(c, "exchange");
  c.check(wrong() == 0, "__syncthreads orders shared-memory writes before reads: %d wrong",
          wrong());
  RELAT_LAUNCH(blocks, 256, 0, nullptr, exchange_kernel<false>)(out);
  launch_ok(c, "exchange without barrier");
  c.check(wrong() > 0, "without the __syncthreads the exchange reads stale values (%d of %d)",
          wrong(), n);
  cudaFree(out);

  int *r = device_alloc<int>(5 * 1024);
  RELAT_LAUNCH(1, 1024, 0, nullptr, barrier_reduce_kernel)(r);
  launch_ok(c, "barrier reductions");
  int bad = 0;
  for (int t = 0; t < 1024; ++t)
    bad +=
        r[t] != 342 || r[1024 + t] != 0 || r[2048 + t] != 1 || r[3072 + t] != 1 || r[4096 + t] != 0;
  c.check(bad == 0, "__syncthreads_count/_and/_or: %d wrong", bad);
  cudaFree(r);
}

// ---- warp primitives ----------------------------------------------------------------------------
// Reference lane rules, written from the CUDA programming guide rather than from PTX.
int ref_idx(int lane, int src, int w) { return (lane & ~(w - 1)) + (src % w + w) % w; }
int ref_up(int lane, int d, int w) { return (lane % w) >= d ? lane - d : lane; }
int ref_down(int lane, int d, int w) { return (lane % w) + d < w ? lane + d : lane; }
int ref_xor(int lane, int m, int w) {
  const int j = lane ^ m;
  return j < (lane & ~(w - 1)) + w ? j : lane;  // earlier groups readable, later ones not
}

template <class T> __device__ T lane_value(int lane) { return T(lane * 7 + 1); }

template <class T> __global__ void shuffle_kernel(T *out, int width, int arg) {
  const int lane = int(threadIdx.x) & 31;
  const T v = lane_value<T>(lane);
  const int base = int(threadIdx.x);
  out[0 * 64 + base] = __shfl_sync(0xffffffffu, v, arg, width);
  out[1 * 64 + base] = __shfl_up_sync(0xffffffffu, v, unsigned(arg), width);
  out[2 * 64 + base] = __shfl_down_sync(0xffffffffu, v, unsigned(arg), width);
  out[3 * 64 + base] = __shfl_xor_sync(0xffffffffu, v, arg, width);
  out[4 * 64 + base] = __shfl_sync(0xffffffffu, v, (lane * 5 + 3) % 32, width);  // per-lane source
}

template <class T> void test_shuffles_of(Counter &c, const char *type) {
  T *out = device_alloc<T>(5 * 64);
  int bad = 0, cases = 0;
  for (int width : {32, 16, 8, 4, 2, 1})
    for (int arg : {0, 1, 3, 5, 8, 16, 31}) {
      RELAT_LAUNCH(1, 64, 0, nullptr, shuffle_kernel<T>)(out, width, arg);
      if (cudaGetLastError() != cudaSuccess) {
        ++bad;
        continue;
      }
      ++cases;
      for (int t = 0; t < 64; ++t) {
        const int lane = t & 31;
        const int d = arg < width ? arg : -1;  // up/down deltas >= width: compare only in range
        auto expect = [&](int src) { return float(lane_value<T>(src)); };
        bad += float(out[t]) != expect(ref_idx(lane, arg, width));
        if (d >= 0) bad += float(out[64 + t]) != expect(ref_up(lane, d, width));
        if (d >= 0) bad += float(out[128 + t]) != expect(ref_down(lane, d, width));
        if (arg < 32) bad += float(out[192 + t]) != expect(ref_xor(lane, arg, width));
        bad += float(out[256 + t]) != expect(ref_idx(lane, (lane * 5 + 3) % 32, width));
      }
    }
  c.check(bad == 0, "__shfl_sync/_up/_down/_xor over widths 1..32, %s: %d wrong in %d launches",
          type, bad, cases);
  cudaFree(out);
}

__global__ void vote_kernel(unsigned *out) {
  const int lane = int(threadIdx.x) & 31;
  out[threadIdx.x * 8 + 0] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[threadIdx.x * 8 + 1] = __any_sync(0xffffffffu, lane == 17);
  out[threadIdx.x * 8 + 2] = __all_sync(0xffffffffu, lane < 31);
  out[threadIdx.x * 8 + 3] = __all_sync(0xffffffffu, lane >= 0);
  out[threadIdx.x * 8 + 4] = __activemask();
  out[threadIdx.x * 8 + 5] = (lane & 1) ? __activemask() : 0u;
  out[threadIdx.x * 8 + 6] = __reduce_add_sync(0xffffffffu, unsigned(lane));
  out[threadIdx.x * 8 + 7] = unsigned(__reduce_max_sync(0xffffffffu, lane == 9 ? -1 : -lane - 5));
  __syncwarp();
}

// Two half-warps exchanging within themselves at the same time, with disjoint masks.
__global__ void half_warp_kernel(int *out) {
  const int lane = int(threadIdx.x) & 31;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int v = lane;
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  out[threadIdx.x] = v;
}

// A block of 48 threads: the second warp has 16 lanes; the absent ones count as exited.
__global__ void partial_warp_kernel(unsigned *out) {
  const int lane = int(threadIdx.x) & 31;
  out[threadIdx.x * 2] = __ballot_sync(0xffffffffu, 1);
  out[threadIdx.x * 2 + 1] = unsigned(__shfl_xor_sync(0xffffffffu, lane, 8));
}

void test_votes(Counter &c) {
  unsigned *out = device_alloc<unsigned>(64 * 8);
  RELAT_LAUNCH(1, 64, 0, nullptr, vote_kernel)(out);
  launch_ok(c, "votes");
  int bad = 0;
  for (int t = 0; t < 64; ++t) {
    const unsigned *o = out + t * 8;
    const int lane = t & 31;
    bad += o[0] != 0x49249249u || o[1] != 1 || o[2] != 0 || o[3] != 1 || o[4] != 0xffffffffu;
    bad += o[5] != ((lane & 1) ? 0xaaaaaaaau : 0u);
    bad += o[6] != 496u || o[7] != unsigned(-1);
  }
  c.check(bad == 0, "__ballot/__any/__all/__activemask/__reduce_*_sync/__syncwarp: %d wrong", bad);
  cudaFree(out);

  int *h = device_alloc<int>(32);
  RELAT_LAUNCH(1, 32, 0, nullptr, half_warp_kernel)(h);
  launch_ok(c, "half warps");
  bad = 0;
  for (int t = 0; t < 32; ++t) bad += h[t] != (t < 16 ? 120 : 376);
  c.check(bad == 0, "disjoint half-warp masks complete independently: %d wrong", bad);
  cudaFree(h);

  unsigned *p = device_alloc<unsigned>(96);
  RELAT_LAUNCH(1, 48, 0, nullptr, partial_warp_kernel)(p);
  launch_ok(c, "partial warp");
  bad = 0;
  for (int t = 0; t < 48; ++t)
    bad +=
        p[t * 2] != (t < 32 ? 0xffffffffu : 0x0000ffffu) || p[t * 2 + 1] != unsigned((t & 31) ^ 8);
  c.check(bad == 0, "a partial last warp: votes see only its lanes: %d wrong", bad);
  cudaFree(p);
}

// ---- atomics ------------------------------------------------------------------------------------
struct Counters {
  float f;
  int i;
  unsigned long long u;
  int max;
  unsigned inc;
  int locked;  // incremented non-atomically under a spin lock
  int lock;
  unsigned long long cas_max;
};

__global__ void atomics_kernel(Counters *c) {
  const int g = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&c->f, 1.0f);
  atomicAdd(&c->i, 2);
  atomicAdd(&c->u, 3ull);
  atomicMax(&c->max, (g * 7919) % 10007);
  atomicInc(&c->inc, 99u);
  while (atomicCAS(&c->lock, 0, 1) != 0) {
  }
  __threadfence();
  const int v = c->locked;  // a lost update here would show in the total
  c->locked = v + 1;
  __threadfence();
  atomicExch(&c->lock, 0);
  unsigned long long old = c->cas_max, want = (unsigned long long)g * 3;
  while (old < want) {
    const unsigned long long seen = atomicCAS(&c->cas_max, old, want);
    if (seen == old) break;
    old = seen;
  }
}

void test_atomics(Counter &c) {
  Counters *d = device_alloc<Counters>(1);
  const int blocks = 8, threads = 128, n = blocks * threads;
  RELAT_LAUNCH(blocks, threads, 0, nullptr, atomics_kernel)(d);
  launch_ok(c, "atomics");
  int max = 0;
  for (int g = 0; g < n; ++g) max = std::max(max, (g * 7919) % 10007);
  c.check(d->f == float(n) && d->i == 2 * n && d->u == 3ull * n && d->max == max &&
              d->inc == unsigned(n % 100) && d->locked == n && d->cas_max == 3ull * (n - 1),
          "atomicAdd f32/i32/u64, atomicMax, atomicInc, atomicCAS lock and CAS loop: f=%g i=%d "
          "u=%llu max=%d inc=%u locked=%d cas=%llu",
          d->f, d->i, d->u, d->max, d->inc, d->locked, d->cas_max);
  cudaFree(d);
}

// ---- shared memory ------------------------------------------------------------------------------
__global__ void dynamic_shared_kernel(float *out, unsigned *poisoned, unsigned n) {
  extern __shared__ float dyn[];
  extern __shared__ unsigned dyn_bits[];
  const unsigned t = threadIdx.x;
  if (t == 0) {
    unsigned fresh = 1;
    for (unsigned i = 0; i < n; ++i)
      fresh &= dyn_bits[i] == 0xffffffffu;  // poisoned at block start
    poisoned[blockIdx.x] =
        fresh + (static_cast<void *>(dyn) == static_cast<void *>(dyn_bits) ? 2 : 0);
  }
  __syncthreads();
  dyn[t] = float(t + blockIdx.x);
  __syncthreads();
  out[blockIdx.x * n + t] = dyn[n - 1 - t];
}

__global__ void big_dynamic_shared_kernel(unsigned *out, unsigned words) {
  extern __shared__ unsigned words_smem[];
  for (unsigned i = threadIdx.x; i < words; i += blockDim.x) words_smem[i] = i;
  __syncthreads();
  unsigned s = 0;
  for (unsigned i = threadIdx.x; i < words; i += blockDim.x) s += words_smem[words - 1 - i];
  atomicAdd(out, s);
}

void test_dynamic_shared(Counter &c) {
  const unsigned n = 256, blocks = 8;
  float *out = device_alloc<float>(n * blocks);
  unsigned *flags = device_alloc<unsigned>(blocks);
  RELAT_LAUNCH(blocks, n, n * sizeof(float), nullptr, dynamic_shared_kernel)(out, flags, n);
  launch_ok(c, "dynamic shared");
  int bad = 0, fresh = 0;
  for (unsigned b = 0; b < blocks; ++b) {
    fresh += flags[b] == 3;
    for (unsigned t = 0; t < n; ++t) bad += out[b * n + t] != float(n - 1 - t + b);
  }
  c.check(bad == 0 && fresh == int(blocks),
          "extern __shared__ sized by the launch, aliased, re-poisoned per block: %d wrong, %d/%u "
          "blocks saw poison and one address",
          bad, fresh, blocks);
  cudaFree(out);
  cudaFree(flags);

  const unsigned words = 64 * 1024 / 4;
  unsigned *sum = device_alloc<unsigned>(1);
  RELAT_LAUNCH(2, 256, words * 4, nullptr, big_dynamic_shared_kernel)(sum, words);
  c.check(cudaGetLastError() == cudaErrorInvalidValue,
          "64 KiB of dynamic shared memory needs the opt-in");
  c.check(
      cudaFuncSetAttribute(big_dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           int(words * 4)) == cudaSuccess,
      "cudaFuncSetAttribute to 64 KiB");
  RELAT_LAUNCH(2, 256, words * 4, nullptr, big_dynamic_shared_kernel)(sum, words);
  launch_ok(c, "64 KiB dynamic shared");
  c.check(*sum == 2u * (words * (words - 1) / 2), "64 KiB dynamic shared memory after the opt-in");
  c.check(
      cudaFuncSetAttribute(big_dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           int(relat_emu::kMaxSharedOptin + 1)) == cudaErrorInvalidValue,
      "opt-in beyond the device's shared memory is refused");
  cudaGetLastError();
  cudaFree(sum);
}

// Static __shared__ is per block even when blocks run at the same time on different OS threads.
// The first two blocks wait for each other, so with two or more workers they must overlap.
struct Overlap {
  int arrived;
  int errors;
  int overlapped;
  unsigned long long thread_of_block[64];
};

__global__ void static_shared_kernel(Overlap *o) {
  __shared__ int s[64];
  const int t = int(threadIdx.x), b = int(blockIdx.x);
  if (t == 0) {
    o->thread_of_block[b] = (unsigned long long)pthread_self();
    if (b < 2) {
      atomicAdd(&o->arrived, 1);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (atomicAdd(&o->arrived, 0) < 2 && std::chrono::steady_clock::now() < until) {
      }
      if (atomicAdd(&o->arrived, 0) >= 2) atomicAdd(&o->overlapped, 1);
    }
  }
  for (int it = 0; it < 20; ++it) {
    s[t] = b * 100000 + it * 64 + t;
    __syncthreads();
    const int u = (t + 7) % 64;
    if (s[u] != b * 100000 + it * 64 + u) atomicAdd(&o->errors, 1);
    __syncthreads();
  }
}

void test_static_shared(Counter &c) {
  const unsigned saved = relat_emu::worker_threads();
  relat_emu::set_worker_threads(4);
  Overlap *o = device_alloc<Overlap>(1);
  RELAT_LAUNCH(64, 64, 0, nullptr, static_shared_kernel)(o);
  launch_ok(c, "static shared");
  std::set<unsigned long long> threads(o->thread_of_block, o->thread_of_block + 64);
  c.check(o->errors == 0 && o->overlapped == 2 && threads.size() >= 2,
          "static __shared__ is per block with blocks running concurrently: %d errors, blocks 0 "
          "and 1 overlapped: %s, %zu OS threads",
          o->errors, o->overlapped == 2 ? "yes" : "no", threads.size());
  cudaFree(o);
  relat_emu::set_worker_threads(saved);
}

// ---- launch configuration errors ----------------------------------------------------------------
__global__ void flag_kernel(int *flag) { *flag = 1; }

void test_launch_errors(Counter &c) {
  int *flag = device_alloc<int>(1);
  struct Case {
    const char *what;
    dim3 grid, block;
    size_t smem;
    cudaError_t want;
  } cases[] = {
      {"1025 threads", dim3(1), dim3(1025), 0, cudaErrorInvalidConfiguration},
      {"block 32x32x2", dim3(1), dim3(32, 32, 2), 0, cudaErrorInvalidConfiguration},
      {"block z = 65", dim3(1), dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration},
      {"block x = 0", dim3(1), dim3(0), 0, cudaErrorInvalidConfiguration},
      {"grid x = 0", dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration},
      {"grid y = 65536", dim3(1, 65536), dim3(32), 0, cudaErrorInvalidConfiguration},
      {"48 KiB + 1 of dynamic shared memory", dim3(1), dim3(32), 48 * 1024 + 1,
       cudaErrorInvalidValue},
  };
  for (const Case &k : cases) {
    *flag = 0;
    RELAT_LAUNCH(k.grid, k.block, k.smem, nullptr, flag_kernel)(flag);
    const cudaError_t peek = cudaPeekAtLastError();
    const cudaError_t e = cudaGetLastError();
    const cudaError_t after = cudaGetLastError();
    c.check(peek == k.want && e == k.want && after == cudaSuccess && *flag == 0,
            "launch error for %s: %s (%s), cleared after reading, kernel not run", k.what,
            cudaGetErrorName(e), cudaGetErrorString(e));
  }
  *flag = 0;
  RELAT_LAUNCH(dim3(1, 1, 1), dim3(32, 32, 1), 48 * 1024, nullptr, flag_kernel)(flag);
  c.check(cudaGetLastError() == cudaSuccess && *flag == 1, "1024 threads and 48 KiB: launches");
  cudaFree(flag);
}

// ---- faults the emulation reports ---------------------------------------------------------------
__global__ void early_exit_barrier_kernel(int *out) {
  if (threadIdx.x >= 40) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void split_barrier_kernel(int *out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}
// Each half names the other in its mask, but with a different mask: neither shuffle can complete.
__global__ void mask_mismatch_kernel(int *out) {
  const int lane = int(threadIdx.x);
  out[lane] = __shfl_xor_sync(lane < 16 ? 0xffffffffu : 0xfffffffeu, lane, 1);
}
__global__ void inactive_source_kernel(int *out) {
  const int lane = int(threadIdx.x);
  if (lane < 16) out[lane] = __shfl_sync(0x0000ffffu, lane, 20);
}
__global__ void exited_source_kernel(int *out) {
  const int lane = int(threadIdx.x);
  if (lane >= 16) return;
  out[lane] = __shfl_xor_sync(0xffffffffu, lane, 16);
}
__global__ void not_in_mask_kernel(int *out) {
  out[threadIdx.x] = __shfl_sync(1u << ((threadIdx.x + 1) % 32), 1, 0);
}
__global__ void shuffle_vs_barrier_kernel(int *out) {
  const int lane = int(threadIdx.x);
  if (lane < 16)
    out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1);
  else
    __syncthreads();
}
__global__ void mixed_primitives_kernel(int *out) {
  const int lane = int(threadIdx.x);
  if (lane < 16)
    out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1);
  else
    out[lane] = int(__ballot_sync(0xffffffffu, 1));
}
__global__ void bad_width_kernel(int *out) {
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0, 12);
}
__global__ void trap_kernel(int *out) {
  if (threadIdx.x == 5) __trap();
  out[threadIdx.x] = 1;
}

void test_faults(Counter &c) {
  int *out = device_alloc<int>(64);
  RELAT_LAUNCH(1, 64, 0, nullptr, early_exit_barrier_kernel)(out);
  expect_fault(c, "threads exit while the others wait at __syncthreads", "exited");
  RELAT_LAUNCH(1, 64, 0, nullptr, split_barrier_kernel)(out);
  expect_fault(c, "two halves of a block at different __syncthreads", "divergent barriers");
  RELAT_LAUNCH(1, 32, 0, nullptr, mask_mismatch_kernel)(out);
  expect_fault(c, "lanes of one shuffle with different masks", "deadlock");
  RELAT_LAUNCH(1, 32, 0, nullptr, inactive_source_kernel)(out);
  expect_fault(c, "a shuffle reading a lane outside its mask", "does not take part");
  RELAT_LAUNCH(1, 32, 0, nullptr, exited_source_kernel)(out);
  expect_fault(c, "a shuffle reading a lane that exited", "does not take part");
  RELAT_LAUNCH(1, 32, 0, nullptr, not_in_mask_kernel)(out);
  expect_fault(c, "a lane calling a shuffle outside its own mask", "not in its own mask");
  RELAT_LAUNCH(1, 32, 0, nullptr, shuffle_vs_barrier_kernel)(out);
  expect_fault(c, "half a warp at a shuffle, half at __syncthreads", "deadlock");
  RELAT_LAUNCH(1, 32, 0, nullptr, mixed_primitives_kernel)(out);
  expect_fault(c, "half a warp at __shfl_xor_sync, half at __ballot_sync",
               "mismatched warp primitives");
  RELAT_LAUNCH(1, 32, 0, nullptr, bad_width_kernel)(out);
  expect_fault(c, "shuffle width 12", "power of two");
  RELAT_LAUNCH(1, 32, 0, nullptr, trap_kernel)(out);
  expect_fault(c, "__trap", "__trap");

  // A fault is sticky: later launches and calls fail until cudaDeviceReset.
  RELAT_LAUNCH(1, 32, 0, nullptr, trap_kernel)(out);
  cudaGetLastError();
  int *flag = nullptr;
  const cudaError_t alloc = cudaMalloc(&flag, 4);
  RELAT_LAUNCH(1, 32, 0, nullptr, flag_kernel)(out);
  const cudaError_t later = cudaGetLastError();
  const cudaError_t sync = cudaDeviceSynchronize();
  cudaDeviceReset();
  RELAT_LAUNCH(1, 32, 0, nullptr, flag_kernel)(out);
  c.check(alloc == cudaErrorLaunchFailure && later == cudaErrorLaunchFailure &&
              sync == cudaErrorLaunchFailure && cudaGetLastError() == cudaSuccess,
          "a kernel fault is sticky until cudaDeviceReset");
  cudaFree(out);
}

// ---- memory API ---------------------------------------------------------------------------------
void test_memory(Counter &c) {
  std::vector<int> host(1000), back(1000);
  for (int i = 0; i < 1000; ++i) host[size_t(i)] = i * i;
  int *d = nullptr;
  bool ok = cudaMalloc(&d, 4000) == cudaSuccess && (reinterpret_cast<uintptr_t>(d) % 256) == 0;
  ok &= cudaMemcpy(d, host.data(), 4000, cudaMemcpyHostToDevice) == cudaSuccess;
  ok &= cudaMemset(d, 0, 400) == cudaSuccess;
  ok &= cudaMemcpy(back.data(), d, 4000, cudaMemcpyDeviceToHost) == cudaSuccess;
  for (int i = 0; i < 1000; ++i) ok &= back[size_t(i)] == (i < 100 ? 0 : i * i);
  ok &= cudaMemcpy(back.data(), d, 4, cudaMemcpyKind(9)) == cudaErrorInvalidMemcpyDirection;
  ok &= cudaGetLastError() == cudaErrorInvalidMemcpyDirection && cudaGetLastError() == cudaSuccess;
  ok &= cudaFree(d) == cudaSuccess;
  int count = 0;
  ok &= cudaGetDeviceCount(&count) == cudaSuccess && count == 1;
  c.check(ok, "cudaMalloc (256-byte aligned)/cudaMemcpy/cudaMemset/cudaFree/cudaGetDeviceCount");
}

// ---- 16-bit conversions: the emulated cuda_bf16.h / cuda_fp16.h round as the CPU twins do -------
void test_conversions(Counter &c) {
  using relat::cpu::bf16;
  using relat::cpu::f16;
  int bad = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    const float e1 = __bfloat162float(__ushort_as_bfloat16(uint16_t(b)));
    const float c1 = relat::cpu::to_f32(bf16{uint16_t(b)});
    const float e2 = __half2float(__ushort_as_half(uint16_t(b)));
    const float c2 = relat::cpu::to_f32(f16{uint16_t(b)});
    bad += !(e1 == c1 || (std::isnan(e1) && std::isnan(c1)));
    bad += !(e2 == c2 || (std::isnan(e2) && std::isnan(c2)));
  }
  std::mt19937 gen(relat::test::test_seed() ^ 0xb16);
  for (int i = 0; i < 1000000; ++i) {
    uint32_t u = gen();
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;  // exact ties
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) continue;
    bad += __bfloat16_as_ushort(__float2bfloat16_rn(f)) != relat::cpu::from_f32<bf16>(f).bits;
    bad += __half_as_ushort(__float2half_rn(f)) != relat::cpu::from_f32<f16>(f).bits;
  }
  c.check(bad == 0,
          "bf16/f16 <-> f32 conversions match the CPU twins' (all 16-bit patterns, 10^6 "
          "floats): %d differ",
          bad);

  // double -> bf16 rounds once: just above a tie rounds up even where double -> float -> bf16
  // would land on the tie and round to even.
  bad = 0;
  for (double base : {1.0, 1.5, 3.0, std::ldexp(1.0, -100), std::ldexp(1.25, 100)}) {  // even bf16s
    const double ulp = std::ldexp(1.0, std::ilogb(base) - 7);
    for (int sign : {1, -1}) {
      const double lo = sign * base, tie = sign * (base + ulp / 2);
      const double up = sign * (base + ulp);
      bad += double(float(__double2bfloat16(tie + sign * ulp * 1e-9))) != up;
      bad += double(float(__double2bfloat16(tie - sign * ulp * 1e-9))) != lo;
      bad += double(float(__double2bfloat16(tie))) != lo;  // tie to even (base is even)
    }
  }
  c.check(bad == 0, "double -> bf16 is correctly rounded near ties: %d wrong", bad);
}

// Out-of-bounds shared memory, for the sanitizers to report (run as separate CTest tests, since the
// report ends the process): dynamic shared memory past the launch's size is ASan-poisoned; a static
// __shared__ array indexed past its end trips UBSan's bounds check.
__global__ void dynamic_shared_overrun_kernel(float *out) {
  extern __shared__ float row[];
  row[threadIdx.x] = 1.f;
  __syncthreads();
  out[threadIdx.x] = row[threadIdx.x + 1];  // the last thread reads one float past the 64 launched
}
__global__ void static_shared_overrun_kernel(int *out) {
  __shared__ int s[64];
  s[threadIdx.x] = int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x + 1];
}

int overrun(const std::string &which) {
  float *out = device_alloc<float>(64);
  if (which == "dynamic-shared-overrun")
    RELAT_LAUNCH(1, 64, 64 * sizeof(float), nullptr, dynamic_shared_overrun_kernel)(out);
  else
    RELAT_LAUNCH(1, 64, 0, nullptr, static_shared_overrun_kernel)(reinterpret_cast<int *>(out));
  std::printf("no error reported: %s\n", cudaGetErrorName(cudaGetLastError()));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1) return overrun(argv[1]);
  relat::test::test_seed();
  Counter c;
  test_builtins(c);
  test_params(c);
  test_grid_constant(c);
  test_barriers(c);
  test_shuffles_of<int>(c, "int");
  test_shuffles_of<float>(c, "float");
  test_shuffles_of<double>(c, "double");
  test_shuffles_of<long long>(c, "long long");
  test_shuffles_of<__nv_bfloat16>(c, "bf16");
  test_shuffles_of<__half>(c, "f16");
  test_votes(c);
  test_atomics(c);
  test_dynamic_shared(c);
  test_static_shared(c);
  test_launch_errors(c);
  test_faults(c);
  test_memory(c);
  test_conversions(c);
  return c.finish();
}
