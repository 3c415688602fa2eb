// CUDA-on-CPU emulation, test-only. Force-included (g++ -x c++ -include cuda_emu.h) ahead of a
// kernel source, it lets the host compiler build kernels/*.cu unchanged and run them on the CPU
// under the CUDA execution model: every CUDA thread is a fiber, the threads of a block run on one
// OS thread and switch at __syncthreads, at every warp primitive and at atomics, so a missing
// barrier or a wrong shuffle lane changes the result. Divergent barriers and mismatched shuffles
// are reported as kernel faults (cudaErrorLaunchFailure).
//
// Schedules (RELAT_EMU_SCHEDULE, or set_schedule): which ready fiber of a block runs next.
//  - random (default): a seeded uniform pick among the ready fibers, at every scheduling point.
//    Every interleaving can happen, but one that needs a whole warp to run ahead of the rest of
//    its block (say 5 shuffle rounds before any other warp moves) has odds like (1/33)^5.
//  - priority: each block draws a random order of its warps (and of the lanes in a warp) from the
//    seed; the highest ready fiber always runs. One warp runs ahead as far as barriers and warp
//    primitives let it, and which warp that is changes from block to block, so a missing barrier
//    between a write by one warp and a read by another shows up with odds (warps-1)/warps.
//  - greedy: greedy-then-oldest, as GPU warp schedulers do: the warp that ran last goes on until
//    none of its lanes can run (lanes in seeded random order), then the lowest-numbered ready warp.
//    The warps then reach each point in index order, warp 0 first.
//  Under priority and greedy, atomics do not switch (the same fiber would be picked again), so
//  interleavings at atomics come from the random schedule only. The test suite runs every kernel
//  test under all three (tests/native/CMakeLists.txt).
//
// Inter-block conflicts (the _race test builds): kernels compiled with GCC's ThreadSanitizer
// instrumentation call emu_race_hooks.cpp before every load, store and atomic (the TSan runtime is
// not used), and emu_race.cpp keeps, per global byte and per launch, the block that wrote it and
// the block(s) that read it. Two blocks of one launch touching one byte without atomics, one of
// them writing, is a kernel fault naming the kernel, both blocks and the code offset of the second
// access, whatever order or OS threads the blocks ran on. Atomics by several blocks are fine; an
// atomic and a plain access by different blocks conflict. Limits: only instrumented code (the
// kernel sources) is checked, not memcpy/memset calls it makes; an atomic load is checked against
// earlier plain writes but not recorded; blocks that order themselves through atomics and fences
// (a last-block-done reduction, a grid-wide barrier) would be reported, since such ordering is not
// modelled; launches of more than 2^31 - 2 blocks are checked only for the lower block indices;
// conflicts between two launches (which are ordered) are never reported.
//
// Only what is emulated faithfully is declared: anything else a kernel uses (other intrinsics,
// __constant__, textures, cooperative groups, other CUDA headers) fails to compile.
//
// Launches are refused as the hardware refuses them, with the same error: block and grid
// dimensions; a block larger than the kernel's __launch_bounds__ or than its registers allow
// (cudaErrorLaunchOutOfResources); static + dynamic shared memory above 48 KiB without
// cudaFuncSetAttribute, or above sm_80's opt-in maximum (cudaErrorInvalidValue). The per-kernel
// figures are nvcc's own, for sm_80 and sm_90, the strictest of the two: when nvcc is found the
// build compiles every kernel source for both and tabulates PTX .maxntid and ptxas -v
// (kernel_resources.cmake, emu_resources.cpp). Without nvcc those three checks are off (a note says
// so once).
//
// What it does not model, so a GPU run (tests/gpu) must still cover it:
//  - timing, occupancy, spills, bank conflicts, coalescing;
//  - the GPU's floating point: no FMA contraction unless the host compiler does it, exact libm
//    functions for the fast intrinsics (__expf, __fdividef, rsqrtf...), sm_80 bf16/f16 arithmetic
//    rounded once from fp32;
//  - memory-model subtleties inside a block: a thread runs uninterrupted between scheduling points,
//    so a race within a block shows only through the order of those points (the schedules above
//    make the likely orders happen, not all of them); a spin-wait on another thread must go through
//    an atomic (a scheduling point) and, under priority or greedy, may never let the awaited thread
//    run; a spin-wait on another block can hang;
//  - races between blocks outside the _race builds (blocks run on real OS threads, unchecked), and
//    the limits of that check listed above;
//  - static __shared__ keeps the previous block's contents (zeros at first) rather than garbage;
//    its overruns are caught by UBSan's bounds check only when indexed as an array (ASan does not
//    pad thread-locals); two differently named extern __shared__ arrays used in one kernel are
//    assumed not to overlap by the host compiler, though they share the buffer as on a GPU;
//  - device pointers are host pointers: passing host memory to a kernel is not an error here;
//  - no __CUDA_ARCH__ (host code paths are compiled), no dynamic parallelism, no streams (launches
//    are synchronous).
#pragma once

#ifndef __cplusplus
#error "cuda_emu.h is C++ only"
#endif
#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#error "cuda_emu.h is for the host compiler; nvcc builds the kernels for real"
#endif

// Standard headers first, so the qualifier macros below never reach their contents.
#include <math.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "emu_half.h"
#include "emu_limits.h"
#include "emu_vector_types.h"

#define RELAT_CUDA_EMULATION 1

// ---- qualifiers ---------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) __attribute__((aligned(n)))
// The launch checks take the bound from nvcc's PTX of the same source (emu_resources.h).
#define __launch_bounds__(...)
// Kernel parameters are per-thread copies here already; the qualifier only promises not to write.
#define __grid_constant__
// Shared memory lives in the storage of the OS thread that runs the block, and one OS thread runs
// one block at a time, so each running block has its own copy. `extern __shared__` arrays become
// undefined thread-local symbols that the build resolves to the dynamic shared memory buffer
// (dynamic_shared.cmake), which the launch sizes, poisons and bounds (ASan) per block.
#define __shared__ thread_local
// __restrict__ is already a GNU C++ keyword.

// ---- runtime API types --------------------------------------------------------------------------
typedef struct CUstream_st *cudaStream_t;

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorAssert = 710,
  cudaErrorIllegalInstruction = 715,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

// The fields the emulation fills from nvcc's compilation of the kernel (emu_resources.h); without
// nvcc: no static shared memory, 1024 threads, 0 registers.
struct cudaFuncAttributes {
  size_t sharedSizeBytes;         // static shared memory
  int maxThreadsPerBlock;         // min(__launch_bounds__, what the registers allow)
  int numRegs;
  int maxDynamicSharedSizeBytes;  // 48 KiB - static unless raised by cudaFuncSetAttribute
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

// ---- runtime API (emu_runtime.cpp). Launches are synchronous; "device" memory is host memory. ---
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamGetDevice(cudaStream_t stream, int *device);
cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void *ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
template <class T> cudaError_t cudaMalloc(T **ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void **>(ptr), bytes);
}

namespace relat_emu {

// Test hooks. The schedule seed makes interleavings reproducible (env RELAT_EMU_SEED; random by
// default); the worker count sets how many OS threads run blocks (env RELAT_EMU_THREADS).
void set_schedule_seed(uint64_t seed);
uint64_t schedule_seed();
// Which ready fiber a block resumes (env RELAT_EMU_SCHEDULE=random|priority|greedy; random by
// default). See the header comment for what each finds.
enum class Schedule : uint8_t { Random, Priority, Greedy };
void set_schedule(Schedule s);
Schedule schedule();
const char *schedule_name(Schedule s);
const char *schedule_name();  // of the current schedule
bool parse_schedule(const char *name, Schedule *s);
// Whether the kernels of this executable carry the inter-block conflict check (the _race builds).
bool race_checked();
void set_worker_threads(unsigned n);
unsigned worker_threads();
// Message of the last kernel fault (divergent barrier, bad shuffle, deadlock, trap), "" if none.
std::string last_fault();

// Launch planning, for the launch-plan sweep (tests/native/launch_plan_test.cpp): with dry runs on,
// every launch is checked as always and, when accepted, recorded instead of run, so the library's
// own host code can be driven with full-size model shapes and pointers that are never read.
struct PlannedLaunch {
  std::string kernel;      // demangled
  dim3 grid, block;
  size_t dynamic_shared;   // asked for by the launch
  size_t static_shared;    // nvcc's
  unsigned max_threads;    // the kernel's on the emulated device
  size_t dynamic_limit;    // the kernel's limit at the launch: 48 KiB - static unless raised
  int device;              // current on the launching thread
};
void set_dry_run(bool on);
std::vector<PlannedLaunch> take_planned_launches();  // and clears the record
// The emulated device: 0 (the default) is both shipped architectures at once, every limit the
// stricter of sm_80 and sm_90; 80 or 90 is that one alone, with its SM count (A100 108, H100 132)
// and shared-memory opt-in (163 / 227 KiB). Clears the kernels' raised shared-memory limits.
void set_device_arch(int arch);
// How many emulated devices there are (1 by default; all alike, memory shared). Each thread has
// its current device (0 at first); a stream belongs to the device current at its creation, and
// launching or copying on a stream of another device fails with cudaErrorInvalidResourceHandle,
// so a test can tell whether an op made its stream's device current.
void set_device_count(int n);

namespace detail {

// Built-in index variables of the running fiber; the scheduler rewrites them on every switch.
struct Builtins {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
};
inline thread_local Builtins tl_builtins;
inline int warp_size() { return int(kWarpSize); }

enum class WarpKind : uint8_t {
  ShflIdx,
  ShflUp,
  ShflDown,
  ShflXor,
  Ballot,
  Any,
  All,
  SyncWarp,
  ReduceAdd,
  ReduceMin,
  ReduceMax,
  ReduceAnd,
  ReduceOr,
  ReduceXor,
};
enum class BarrierKind : uint8_t { Plain, Count, And, Or };

// Scheduling points, defined in emu_scheduler.cpp. `op` names the intrinsic for messages.
uint64_t warp_op(WarpKind kind, unsigned mask, uint64_t value, unsigned size, int arg, int width,
                 const char *op, const char *file, int line);
int barrier(BarrierKind kind, int pred, const char *op, const char *file, int line);
unsigned active_mask(const char *file, int line);
void atomic_point(const char *op);
[[noreturn]] void trap(const char *file, int line);

template <class T> inline uint64_t to_bits(const T &v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp value type");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T> inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace detail
}  // namespace relat_emu

// ---- built-in variables (read-only, as in CUDA) -------------------------------------------------
#define threadIdx (static_cast<const ::uint3 &>(::relat_emu::detail::tl_builtins.thread_idx))
#define blockIdx (static_cast<const ::uint3 &>(::relat_emu::detail::tl_builtins.block_idx))
#define blockDim (static_cast<const ::dim3 &>(::relat_emu::detail::tl_builtins.block_dim))
#define gridDim (static_cast<const ::dim3 &>(::relat_emu::detail::tl_builtins.grid_dim))
#define warpSize (::relat_emu::detail::warp_size())

// Call sites are captured with default arguments so fault messages can name file:line.
#define RELAT_EMU_SITE \
  const char *relat_emu_file = __builtin_FILE(), int relat_emu_line = __builtin_LINE()
#define RELAT_EMU_AT relat_emu_file, relat_emu_line

// ---- barriers -----------------------------------------------------------------------------------
using relat_emu::detail::BarrierKind;
using relat_emu::detail::WarpKind;

inline void __syncthreads(RELAT_EMU_SITE) {
  relat_emu::detail::barrier(BarrierKind::Plain, 0, "__syncthreads", RELAT_EMU_AT);
}
inline int __syncthreads_count(int pred, RELAT_EMU_SITE) {
  return relat_emu::detail::barrier(BarrierKind::Count, pred, "__syncthreads_count", RELAT_EMU_AT);
}
inline int __syncthreads_and(int pred, RELAT_EMU_SITE) {
  return relat_emu::detail::barrier(BarrierKind::And, pred, "__syncthreads_and", RELAT_EMU_AT);
}
inline int __syncthreads_or(int pred, RELAT_EMU_SITE) {
  return relat_emu::detail::barrier(BarrierKind::Or, pred, "__syncthreads_or", RELAT_EMU_AT);
}

// ---- warp primitives ----------------------------------------------------------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu, RELAT_EMU_SITE) {
  relat_emu::detail::warp_op(WarpKind::SyncWarp, mask, 0, 0, 0, 32, "__syncwarp", RELAT_EMU_AT);
}
inline unsigned __activemask(RELAT_EMU_SITE) {
  return relat_emu::detail::active_mask(RELAT_EMU_AT);
}
inline unsigned __ballot_sync(unsigned mask, int pred, RELAT_EMU_SITE) {
  return unsigned(relat_emu::detail::warp_op(WarpKind::Ballot, mask, pred != 0, 4, 0, 32,
                                             "__ballot_sync", RELAT_EMU_AT));
}
inline int __any_sync(unsigned mask, int pred, RELAT_EMU_SITE) {
  return int(relat_emu::detail::warp_op(WarpKind::Any, mask, pred != 0, 4, 0, 32, "__any_sync",
                                        RELAT_EMU_AT));
}
inline int __all_sync(unsigned mask, int pred, RELAT_EMU_SITE) {
  return int(relat_emu::detail::warp_op(WarpKind::All, mask, pred != 0, 4, 0, 32, "__all_sync",
                                        RELAT_EMU_AT));
}

// One non-template overload per type CUDA accepts, so overload resolution (promotions, ambiguities)
// matches nvcc's.
#define RELAT_EMU_SHFL(T)                                                                          \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32, RELAT_EMU_SITE) {       \
    return relat_emu::detail::from_bits<T>(                                                        \
        relat_emu::detail::warp_op(WarpKind::ShflIdx, mask, relat_emu::detail::to_bits(var),       \
                                   sizeof(T), src_lane, width, "__shfl_sync", RELAT_EMU_AT));      \
  }                                                                                                \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, RELAT_EMU_SITE) {  \
    return relat_emu::detail::from_bits<T>(                                                        \
        relat_emu::detail::warp_op(WarpKind::ShflUp, mask, relat_emu::detail::to_bits(var),        \
                                   sizeof(T), int(delta), width, "__shfl_up_sync", RELAT_EMU_AT)); \
  }                                                                                                \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,                  \
                            RELAT_EMU_SITE) {                                                      \
    return relat_emu::detail::from_bits<T>(relat_emu::detail::warp_op(                             \
        WarpKind::ShflDown, mask, relat_emu::detail::to_bits(var), sizeof(T), int(delta), width,   \
        "__shfl_down_sync", RELAT_EMU_AT));                                                        \
  }                                                                                                \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32, RELAT_EMU_SITE) {  \
    return relat_emu::detail::from_bits<T>(                                                        \
        relat_emu::detail::warp_op(WarpKind::ShflXor, mask, relat_emu::detail::to_bits(var),       \
                                   sizeof(T), lane_mask, width, "__shfl_xor_sync", RELAT_EMU_AT)); \
  }
RELAT_EMU_SHFL(int)
RELAT_EMU_SHFL(unsigned int)
RELAT_EMU_SHFL(long)
RELAT_EMU_SHFL(unsigned long)
RELAT_EMU_SHFL(long long)
RELAT_EMU_SHFL(unsigned long long)
RELAT_EMU_SHFL(float)
RELAT_EMU_SHFL(double)
RELAT_EMU_SHFL(__half)
RELAT_EMU_SHFL(__half2)
RELAT_EMU_SHFL(__nv_bfloat16)
RELAT_EMU_SHFL(__nv_bfloat162)
#undef RELAT_EMU_SHFL

// sm_80 warp reductions. `arg` carries signedness for min/max.
#define RELAT_EMU_REDUCE(name, kind, T, is_signed)                                               \
  inline T name(unsigned mask, T value, RELAT_EMU_SITE) {                                        \
    return T(relat_emu::detail::warp_op(kind, mask, uint64_t(uint32_t(value)), 4, is_signed, 32, \
                                        #name, RELAT_EMU_AT));                                   \
  }
RELAT_EMU_REDUCE(__reduce_add_sync, WarpKind::ReduceAdd, unsigned, 0)
RELAT_EMU_REDUCE(__reduce_add_sync, WarpKind::ReduceAdd, int, 1)
RELAT_EMU_REDUCE(__reduce_min_sync, WarpKind::ReduceMin, unsigned, 0)
RELAT_EMU_REDUCE(__reduce_min_sync, WarpKind::ReduceMin, int, 1)
RELAT_EMU_REDUCE(__reduce_max_sync, WarpKind::ReduceMax, unsigned, 0)
RELAT_EMU_REDUCE(__reduce_max_sync, WarpKind::ReduceMax, int, 1)
RELAT_EMU_REDUCE(__reduce_and_sync, WarpKind::ReduceAnd, unsigned, 0)
RELAT_EMU_REDUCE(__reduce_or_sync, WarpKind::ReduceOr, unsigned, 0)
RELAT_EMU_REDUCE(__reduce_xor_sync, WarpKind::ReduceXor, unsigned, 0)
#undef RELAT_EMU_REDUCE

// ---- atomics: real atomics (blocks run concurrently) and scheduling points (threads interleave) -
namespace relat_emu::detail {
template <class T, class F> inline T atomic_update(T *address, F f, const char *op) {
  atomic_point(op);
  T old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  T next = f(old);
  while (
      !__atomic_compare_exchange(address, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    next = f(old);
  return old;
}
}  // namespace relat_emu::detail

#define RELAT_EMU_ATOMIC_INT(T)                                                                  \
  inline T atomicAdd(T *a, T v) {                                                                \
    relat_emu::detail::atomic_point("atomicAdd");                                                \
    return __atomic_fetch_add(a, v, __ATOMIC_RELAXED);                                           \
  }                                                                                              \
  inline T atomicExch(T *a, T v) {                                                               \
    relat_emu::detail::atomic_point("atomicExch");                                               \
    return __atomic_exchange_n(a, v, __ATOMIC_RELAXED);                                          \
  }                                                                                              \
  inline T atomicAnd(T *a, T v) {                                                                \
    relat_emu::detail::atomic_point("atomicAnd");                                                \
    return __atomic_fetch_and(a, v, __ATOMIC_RELAXED);                                           \
  }                                                                                              \
  inline T atomicOr(T *a, T v) {                                                                 \
    relat_emu::detail::atomic_point("atomicOr");                                                 \
    return __atomic_fetch_or(a, v, __ATOMIC_RELAXED);                                            \
  }                                                                                              \
  inline T atomicXor(T *a, T v) {                                                                \
    relat_emu::detail::atomic_point("atomicXor");                                                \
    return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED);                                           \
  }                                                                                              \
  inline T atomicMax(T *a, T v) {                                                                \
    return relat_emu::detail::atomic_update(a, [v](T o) { return o < v ? v : o; }, "atomicMax"); \
  }                                                                                              \
  inline T atomicMin(T *a, T v) {                                                                \
    return relat_emu::detail::atomic_update(a, [v](T o) { return v < o ? v : o; }, "atomicMin"); \
  }                                                                                              \
  inline T atomicCAS(T *a, T compare, T v) {                                                     \
    relat_emu::detail::atomic_point("atomicCAS");                                                \
    __atomic_compare_exchange_n(a, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);      \
    return compare;                                                                              \
  }
RELAT_EMU_ATOMIC_INT(int)
RELAT_EMU_ATOMIC_INT(unsigned int)
RELAT_EMU_ATOMIC_INT(unsigned long long)
#undef RELAT_EMU_ATOMIC_INT
inline int atomicSub(int *a, int v) {
  relat_emu::detail::atomic_point("atomicSub");
  return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED);
}
inline unsigned atomicSub(unsigned *a, unsigned v) {
  relat_emu::detail::atomic_point("atomicSub");
  return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED);
}
inline long long atomicMax(long long *a, long long v) {
  return relat_emu::detail::atomic_update(
      a, [v](long long o) { return o < v ? v : o; }, "atomicMax");
}
inline long long atomicMin(long long *a, long long v) {
  return relat_emu::detail::atomic_update(
      a, [v](long long o) { return v < o ? v : o; }, "atomicMin");
}
inline unsigned atomicInc(unsigned *a, unsigned v) {
  return relat_emu::detail::atomic_update(
      a, [v](unsigned o) { return o >= v ? 0u : o + 1; }, "atomicInc");
}
inline unsigned atomicDec(unsigned *a, unsigned v) {
  return relat_emu::detail::atomic_update(
      a, [v](unsigned o) { return (o == 0 || o > v) ? v : o - 1; }, "atomicDec");
}
inline unsigned short atomicCAS(unsigned short *a, unsigned short compare, unsigned short v) {
  relat_emu::detail::atomic_point("atomicCAS");
  __atomic_compare_exchange_n(a, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
inline float atomicExch(float *a, float v) {
  relat_emu::detail::atomic_point("atomicExch");
  float old;
  __atomic_exchange(a, &v, &old, __ATOMIC_RELAXED);
  return old;
}
inline float atomicAdd(float *a, float v) {
  return relat_emu::detail::atomic_update(a, [v](float o) { return o + v; }, "atomicAdd");
}
inline double atomicAdd(double *a, double v) {
  return relat_emu::detail::atomic_update(a, [v](double o) { return o + v; }, "atomicAdd");
}
inline __half atomicAdd(__half *a, __half v) {
  return relat_emu::detail::atomic_update(a, [v](__half o) { return __hadd(o, v); }, "atomicAdd");
}
inline __nv_bfloat16 atomicAdd(__nv_bfloat16 *a, __nv_bfloat16 v) {
  return relat_emu::detail::atomic_update(
      a, [v](__nv_bfloat16 o) { return __hadd(o, v); }, "atomicAdd");
}

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __trap(RELAT_EMU_SITE) { relat_emu::detail::trap(RELAT_EMU_AT); }

// ---- read-only / cache-hinted loads and stores: plain memory accesses here ----------------------
#define RELAT_EMU_LOAD_STORE(T)              \
  inline T __ldg(const T *p) { return *p; }  \
  inline T __ldcg(const T *p) { return *p; } \
  inline T __ldca(const T *p) { return *p; } \
  inline T __ldcs(const T *p) { return *p; } \
  inline T __ldlu(const T *p) { return *p; } \
  inline T __ldcv(const T *p) { return *p; } \
  inline void __stwb(T *p, T v) { *p = v; }  \
  inline void __stcg(T *p, T v) { *p = v; }  \
  inline void __stcs(T *p, T v) { *p = v; }  \
  inline void __stwt(T *p, T v) { *p = v; }
RELAT_EMU_LOAD_STORE(char)
RELAT_EMU_LOAD_STORE(signed char)
RELAT_EMU_LOAD_STORE(short)
RELAT_EMU_LOAD_STORE(int)
RELAT_EMU_LOAD_STORE(long)
RELAT_EMU_LOAD_STORE(long long)
RELAT_EMU_LOAD_STORE(unsigned char)
RELAT_EMU_LOAD_STORE(unsigned short)
RELAT_EMU_LOAD_STORE(unsigned int)
RELAT_EMU_LOAD_STORE(unsigned long)
RELAT_EMU_LOAD_STORE(unsigned long long)
RELAT_EMU_LOAD_STORE(float)
RELAT_EMU_LOAD_STORE(double)
RELAT_EMU_LOAD_STORE(char2)
RELAT_EMU_LOAD_STORE(char4)
RELAT_EMU_LOAD_STORE(uchar2)
RELAT_EMU_LOAD_STORE(uchar4)
RELAT_EMU_LOAD_STORE(short2)
RELAT_EMU_LOAD_STORE(short4)
RELAT_EMU_LOAD_STORE(ushort2)
RELAT_EMU_LOAD_STORE(ushort4)
RELAT_EMU_LOAD_STORE(int2)
RELAT_EMU_LOAD_STORE(int4)
RELAT_EMU_LOAD_STORE(uint2)
RELAT_EMU_LOAD_STORE(uint4)
RELAT_EMU_LOAD_STORE(float2)
RELAT_EMU_LOAD_STORE(float4)
RELAT_EMU_LOAD_STORE(longlong2)
RELAT_EMU_LOAD_STORE(ulonglong2)
RELAT_EMU_LOAD_STORE(double2)
RELAT_EMU_LOAD_STORE(__half)
RELAT_EMU_LOAD_STORE(__half2)
RELAT_EMU_LOAD_STORE(__nv_bfloat16)
RELAT_EMU_LOAD_STORE(__nv_bfloat162)
#undef RELAT_EMU_LOAD_STORE

// ---- math. The <math.h> functions (expf, sqrtf, ...) come from the C library and are correctly
// rounded or close to it; the fast intrinsics below are computed exactly, so they are more accurate
// than the GPU's approximations: tolerances must cover the GPU, not the emulation.
// -----------------
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.f / sqrtf(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline double __fma_rn(double x, double y, double z) { return fma(x, y, z); }
inline float __saturatef(float x) { return x >= 1.f ? 1.f : (x > 0.f ? x : 0.f); }  // NaN -> 0

inline int __float_as_int(float x) {
  return relat_emu::detail::from_bits<int>(relat_emu::detail::to_bits(x));
}
inline unsigned __float_as_uint(float x) { return relat_emu::detail::f32_bits(x); }
inline float __int_as_float(int x) { return relat_emu::detail::bits_f32(uint32_t(x)); }
inline float __uint_as_float(unsigned x) { return relat_emu::detail::bits_f32(x); }
inline long long __double_as_longlong(double x) {
  return relat_emu::detail::from_bits<long long>(relat_emu::detail::to_bits(x));
}
inline double __longlong_as_double(long long x) {
  return relat_emu::detail::from_bits<double>(relat_emu::detail::to_bits(x));
}
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline unsigned __float2uint_rn(float x) { return unsigned(nearbyintf(x)); }
inline float __int2float_rn(int x) { return float(x); }
inline float __uint2float_rn(unsigned x) { return float(x); }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned long long __brevll(unsigned long long x) {
  return (static_cast<unsigned long long>(__brev(unsigned(x))) << 32) | __brev(unsigned(x >> 32));
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((uint64_t(a) * b) >> 32); }
inline int __mulhi(int a, int b) { return int((int64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) {
  return (long long)(((__int128)a * b) >> 64);
}

// Device-code min/max overloads of the global namespace; mixed-type calls are ambiguous here.
#define RELAT_EMU_MINMAX(T)                        \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
RELAT_EMU_MINMAX(int)
RELAT_EMU_MINMAX(unsigned int)
RELAT_EMU_MINMAX(long)
RELAT_EMU_MINMAX(unsigned long)
RELAT_EMU_MINMAX(long long)
RELAT_EMU_MINMAX(unsigned long long)
#undef RELAT_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---- kernel launch ------------------------------------------------------------------------------
namespace relat_emu::detail {

struct LaunchConfig {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  const void *func;  // identifies the kernel for cudaFuncSetAttribute
  const char *name;  // the kernel expression as written at the launch
  const char *file;
  int line;
};
struct KernelCall {
  void (*invoke)(const void *ctx);
  const void *ctx;
};
// Validates the configuration (errors go to cudaGetLastError), then runs every block to completion.
void launch(const LaunchConfig &cfg, KernelCall call);
cudaError_t func_set_attribute(const void *func, cudaFuncAttribute attr, int value);
cudaError_t func_get_attributes(cudaFuncAttributes *attr, const void *func);

template <class... P> class Launcher {
 public:
  Launcher(void (*kernel)(P...), const LaunchConfig &cfg) : kernel_(kernel), cfg_(cfg) {}

  template <class... A> void operator()(A &&...args) const {
    static_assert(sizeof...(A) == sizeof...(P),
                  "kernel launched with the wrong number of arguments");
    static_assert(!(std::is_reference_v<P> || ...), "kernel parameters cannot be references");
    static_assert((std::is_trivially_copyable_v<P> && ...),
                  "kernel parameters must be trivially copyable");
    static_assert((std::is_convertible_v<A &&, P> && ...),
                  "kernel argument not implicitly convertible to its parameter");
    static_assert((0 + ... + sizeof(P)) <= kMaxKernelParamBytes, "kernel parameters too large");
    // Arguments are converted once, at the launch, as nvcc does; every thread gets its own copy.
    const std::tuple<P...> params(static_cast<P>(std::forward<A>(args))...);
    struct Ctx {
      void (*kernel)(P...);
      const std::tuple<P...> *params;
    } ctx{kernel_, &params};
    launch(cfg_, KernelCall{[](const void *c) {
                              const Ctx *x = static_cast<const Ctx *>(c);
                              std::apply(x->kernel, *x->params);
                            },
                            &ctx});
  }

 private:
  void (*kernel_)(P...);
  LaunchConfig cfg_;
};

template <class... P>
Launcher<P...> make_launcher(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             const char *name, const char *file, int line, void (*kernel)(P...)) {
  return Launcher<P...>(
      kernel, LaunchConfig{grid, block, smem, stream, reinterpret_cast<const void *>(kernel), name,
                           file, line});
}

}  // namespace relat_emu::detail

#define RELAT_LAUNCH(grid, block, smem, stream, ...)                                             \
  ::relat_emu::detail::make_launcher((grid), (block), (smem), static_cast<cudaStream_t>(stream), \
                                     #__VA_ARGS__, __FILE__, __LINE__, __VA_ARGS__)

template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return relat_emu::detail::func_set_attribute(reinterpret_cast<const void *>(kernel), attr, value);
}
template <class... P>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, void (*kernel)(P...)) {
  return relat_emu::detail::func_get_attributes(attr, reinterpret_cast<const void *>(kernel));
}

// A kernel TU that references an `extern __shared__` array needs a TLS init function of its own
// (GCC calls __tls_init for internal-linkage thread-locals); this dynamically initialised variable
// makes GCC emit one.
namespace relat_emu::detail {
int tls_anchor();
namespace {
[[maybe_unused]] thread_local int tls_anchor_value = tls_anchor();
}
}  // namespace relat_emu::detail
