// The ThreadSanitizer instrumentation entry points, defined by the CUDA emulation instead of the
// TSan runtime: kernels compiled with -fsanitize=thread (and linked without it) call these before
// every memory access, and they feed the inter-block conflict check of emu_race.cpp. Linked only
// into the race-checked test executables (tests/native/CMakeLists.txt); every other build has no
// definition of these names.
#include "emu_internal.h"

using relat_emu::detail::race::Access;
using relat_emu::detail::race::access;

#define RELAT_PC __builtin_return_address(0)

extern "C" {

// Called by the constructor of every instrumented object.
void __tsan_init() { relat_emu::detail::race::enable(); }
void __tsan_func_entry(void *) {}
void __tsan_func_exit() {}
void __tsan_vptr_read(void **) {}
void __tsan_vptr_update(void **, void *) {}

#define RELAT_RACE_PLAIN(n)                                                                  \
  void __tsan_read##n(void *p) { access(p, n, Access::Read, RELAT_PC); }                     \
  void __tsan_write##n(void *p) { access(p, n, Access::Write, RELAT_PC); }                   \
  void __tsan_unaligned_read##n(void *p) { access(p, n, Access::Read, RELAT_PC); }           \
  void __tsan_unaligned_write##n(void *p) { access(p, n, Access::Write, RELAT_PC); }         \
  void __tsan_volatile_read##n(void *p) { access(p, n, Access::Read, RELAT_PC); }            \
  void __tsan_volatile_write##n(void *p) { access(p, n, Access::Write, RELAT_PC); }          \
  void __tsan_unaligned_volatile_read##n(void *p) { access(p, n, Access::Read, RELAT_PC); }  \
  void __tsan_unaligned_volatile_write##n(void *p) { access(p, n, Access::Write, RELAT_PC); }
RELAT_RACE_PLAIN(1)
RELAT_RACE_PLAIN(2)
RELAT_RACE_PLAIN(4)
RELAT_RACE_PLAIN(8)
RELAT_RACE_PLAIN(16)
#undef RELAT_RACE_PLAIN

void __tsan_read_range(void *p, unsigned long n) { access(p, n, Access::Read, RELAT_PC); }
void __tsan_write_range(void *p, unsigned long n) { access(p, n, Access::Write, RELAT_PC); }

// Atomics: done here (sequentially consistent, at least as strong as asked), after the check.
#define RELAT_RACE_ATOMIC(bits, T)                                                                \
  T __tsan_atomic##bits##_load(const volatile T *a, int) {                                        \
    access(const_cast<const T *>(a), sizeof(T), Access::AtomicLoad, RELAT_PC);                    \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                                  \
  }                                                                                               \
  void __tsan_atomic##bits##_store(volatile T *a, T v, int) {                                     \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC);                        \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                     \
  }                                                                                               \
  T __tsan_atomic##bits##_exchange(volatile T *a, T v, int) {                                     \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC);                        \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                           \
  }                                                                                               \
  RELAT_RACE_FETCH(bits, T, add)                                                                  \
  RELAT_RACE_FETCH(bits, T, sub)                                                                  \
  RELAT_RACE_FETCH(bits, T, and)                                                                  \
  RELAT_RACE_FETCH(bits, T, or)                                                                   \
  RELAT_RACE_FETCH(bits, T, xor)                                                                  \
  RELAT_RACE_FETCH(bits, T, nand)                                                                 \
  int __tsan_atomic##bits##_compare_exchange_strong(volatile T *a, T *c, T v, int, int) {         \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC);                        \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
  }                                                                                               \
  int __tsan_atomic##bits##_compare_exchange_weak(volatile T *a, T *c, T v, int, int) {           \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC);                        \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);        \
  }                                                                                               \
  T __tsan_atomic##bits##_compare_exchange_val(volatile T *a, T c, T v, int, int) {               \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC);                        \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);             \
    return c;                                                                                     \
  }
#define RELAT_RACE_FETCH(bits, T, op)                                      \
  T __tsan_atomic##bits##_fetch_##op(volatile T *a, T v, int) {            \
    access(const_cast<T *>(a), sizeof(T), Access::AtomicUpdate, RELAT_PC); \
    return __atomic_fetch_##op(a, v, __ATOMIC_SEQ_CST);                    \
  }
RELAT_RACE_ATOMIC(8, uint8_t)
RELAT_RACE_ATOMIC(16, uint16_t)
RELAT_RACE_ATOMIC(32, uint32_t)
RELAT_RACE_ATOMIC(64, uint64_t)
#undef RELAT_RACE_ATOMIC
#undef RELAT_RACE_FETCH

void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

}  // extern "C"
