// Inter-block conflict detection of the CUDA emulation. Blocks of one launch are unordered on a GPU,
// so two of them touching the same global byte without atomics, at least one of them writing, is a
// race whatever order the emulation happens to run them in. The kernels of a checked build are
// compiled with GCC's ThreadSanitizer instrumentation (-fsanitize=thread), which calls a hook
// before every load, store and atomic; emu_race_hooks.cpp defines those hooks (instead of linking
// the TSan runtime) and forwards them here. The check is deterministic: it records, per global
// byte and per launch, which block wrote it and which block(s) read it, so it does not depend on
// which OS thread ran which block, or when.
//
// Shadow memory: one Cell (8 bytes) per application byte, in 4 MiB chunks mapped on first touch
// and dropped at the end of the launch; a flat table of chunk pointers covers the 47-bit user
// address space (256 MiB of reserved, mostly untouched, address space).
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "emu_internal.h"

namespace relat_emu::detail::race {
namespace {

constexpr int kAddressBits = 47;
constexpr int kChunkBits = 22;
constexpr size_t kChunkBytes = size_t(1) << kChunkBits;
constexpr size_t kChunks = size_t(1) << (kAddressBits - kChunkBits);

// w: 0 nobody; B (a block's linear index + 1) wrote it; B | kAtomic: only block B updated it, with
// atomics; kMany: several blocks updated it, all with atomics. r: 0 nobody; B read it; kMany: two
// or more blocks read it. Atomic loads are checked against w but not recorded.
constexpr uint32_t kAtomic = 0x80000000u, kMany = 0xffffffffu, kMaxBlock = 0x7ffffffeu;
struct Cell {
  std::atomic<uint32_t> w, r;
};
static_assert(sizeof(Cell) == 8, "two words per byte");

std::atomic<bool> g_enabled{false};
std::atomic<Cell *> *g_table = nullptr;
std::mutex g_chunks_mutex;
std::vector<size_t> g_chunks;  // indices of the chunks mapped in this launch
dim3 g_grid;
std::atomic<bool> g_conflict{false};
std::string g_report;  // written once, by the access that set g_conflict

// Message pieces in fixed buffers (format() needs none of the shared state).
struct Text {
  char s[512];
  const char *c_str() const { return s; }
};

thread_local uint32_t tl_block = 0;  // B while this OS thread runs a checked block, else 0
// Per-OS-thread memory that successive blocks reuse and that is never global: the fiber stacks
// and the static TLS block that holds __shared__ (thread_local) arrays.
thread_local uintptr_t tl_stacks_lo = 0, tl_stacks_n = 0, tl_tls_lo = 0, tl_tls_n = 0;

Cell *chunk(size_t index) {
  Cell *c = g_table[index].load(std::memory_order_acquire);
  if (c) return c;
  void *p = mmap(nullptr, kChunkBytes * sizeof(Cell), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "relat-cuda-emu: cannot map race-check shadow memory\n");
    std::abort();
  }
  Cell *expected = nullptr;
  if (!g_table[index].compare_exchange_strong(expected, static_cast<Cell *>(p))) {
    munmap(p, kChunkBytes * sizeof(Cell));
    return expected;
  }
  std::lock_guard<std::mutex> lock(g_chunks_mutex);
  g_chunks.push_back(index);
  return static_cast<Cell *>(p);
}

Text block_name(uint32_t b) {
  Text t;
  const uint64_t i = b - 1;
  std::snprintf(t.s, sizeof t.s, "(%u,%u,%u)", unsigned(i % g_grid.x),
                unsigned(i / g_grid.x % g_grid.y), unsigned(i / g_grid.x / g_grid.y));
  return t;
}

// Where in the executable the access is: an offset addr2line can take.
Text code_site(const void *pc) {
  Text t;
  Dl_info info;
  if (pc && dladdr(pc, &info) && info.dli_fname)
    std::snprintf(t.s, sizeof t.s, "%s+0x%zx", info.dli_fname,
                  size_t(static_cast<const char *>(pc) - static_cast<const char *>(info.dli_fbase)));
  else
    std::snprintf(t.s, sizeof t.s, "%p", pc);
  return t;
}

const char *verb(Access k) {
  switch (k) {
    case Access::Read: return "reads";
    case Access::Write: return "writes";
    case Access::AtomicLoad: return "atomically loads";
    case Access::AtomicUpdate: break;
  }
  return "atomically updates";
}

// `other_w`: the w that conflicts (0 when the conflict is with readers, then `other_r`).
void report(const void *p, size_t n, Access k, const void *pc, uint32_t other_w, uint32_t other_r) {
  bool expected = false;
  if (!g_conflict.compare_exchange_strong(expected, true)) return;
  const uint32_t b = tl_block;
  std::string other, what;
  if (other_w == kMany) {
    other = "several other blocks";
    what = "updated atomically";
  } else if (other_w) {
    other = block_name(other_w & ~kAtomic).c_str();
    other = "block " + other;
    what = (other_w & kAtomic) ? "updated atomically" : "wrote";
  } else if (other_r == kMany) {
    other = "other blocks";
    what = "read";
  } else {
    other = "block " + std::string(block_name(other_r).c_str());
    what = "read";
  }
  g_report = format(
      "block %s %s %zu byte(s) at %p (%s) that %s %s in the same launch: blocks of one launch are "
      "unordered, so non-atomic accesses to one address by two of them, one a write, race "
      "(write/write or read/write; use atomics, or give each block its own output)",
      block_name(b).c_str(), verb(k), n, p, code_site(pc).c_str(), other.c_str(), what.c_str());
}

// Checks and records one byte; false after a conflict.
bool byte(Cell &c, Access k, uint32_t b, const void *p, size_t n, const void *pc) {
  const auto sc = std::memory_order_seq_cst;
  // Dekker-style: each side publishes its own access, then looks at the other kind (seq_cst), so
  // two blocks racing on one byte from two OS threads cannot both miss each other.
  switch (k) {
    case Access::Read: {
      uint32_t r = c.r.load(sc);
      while (r != b && r != kMany) {
        if (c.r.compare_exchange_weak(r, r == 0 ? b : kMany, sc)) break;
      }
      const uint32_t w = c.w.load(sc);
      if (w != 0 && (w & ~kAtomic) != b) return report(p, n, k, pc, w, 0), false;
      return true;
    }
    case Access::AtomicLoad: {
      const uint32_t w = c.w.load(sc);
      if (w != 0 && !(w & kAtomic) && w != b) return report(p, n, k, pc, w, 0), false;
      return true;
    }
    case Access::Write: {
      uint32_t w = c.w.load(sc);
      while (w != b) {
        if (w != 0 && (w & ~kAtomic) != b) return report(p, n, k, pc, w, 0), false;
        if (c.w.compare_exchange_weak(w, b, sc)) break;  // nobody, or B's own atomics
      }
      const uint32_t r = c.r.load(sc);
      if (r != 0 && r != b) return report(p, n, k, pc, 0, r), false;
      return true;
    }
    case Access::AtomicUpdate: {
      uint32_t w = c.w.load(sc);
      for (;;) {
        if (w == b || w == (b | kAtomic) || w == kMany) break;
        if (w != 0 && !(w & kAtomic)) return report(p, n, k, pc, w, 0), false;
        if (c.w.compare_exchange_weak(w, w == 0 ? (b | kAtomic) : kMany, sc)) break;
      }
      const uint32_t r = c.r.load(sc);
      if (r != 0 && r != b) return report(p, n, k, pc, 0, r), false;
      return true;
    }
  }
  return true;
}

int find_tls(dl_phdr_info *info, size_t, void *out) {
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      *static_cast<const ElfW(Phdr) **>(out) = &info->dlpi_phdr[i];
      break;
    }
  return 1;  // the first object is the executable
}

}  // namespace

void enable() { g_enabled = true; }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void thread_init(const void *stacks, size_t bytes) {
  if (!enabled()) return;
  tl_stacks_lo = reinterpret_cast<uintptr_t>(stacks);
  tl_stacks_n = bytes;
  // x86-64 and AArch64 glibc: the executable's TLS block ends at (x86-64) or starts near (AArch64)
  // the thread pointer. Its size comes from PT_TLS; the bounds are checked against the dynamic
  // shared memory buffer, so a layout this does not know fails loudly.
  const ElfW(Phdr) *tls = nullptr;
  dl_iterate_phdr(find_tls, &tls);
  const uintptr_t tp = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
  if (tls) {
    const uintptr_t align = tls->p_align ? tls->p_align : 1;
    const uintptr_t size = (tls->p_memsz + align - 1) / align * align + align;
#if defined(__x86_64__)
    tl_tls_lo = tp - size;
#else
    tl_tls_lo = tp;
#endif
    tl_tls_n = size + 64;
  }
  const uintptr_t shared = reinterpret_cast<uintptr_t>(relat_emu_dynamic_shared);
  if (!tls || shared - tl_tls_lo >= tl_tls_n) {
    std::fprintf(stderr,
                 "relat-cuda-emu: race check: cannot locate this thread's static TLS block "
                 "(shared memory at %p, thread pointer %p)\n",
                 relat_emu_dynamic_shared, reinterpret_cast<void *>(tp));
    std::abort();
  }
}

void launch_begin(dim3 grid) {
  if (!enabled()) return;
  if (!g_table) {
    void *p = mmap(nullptr, kChunks * sizeof(std::atomic<Cell *>), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "relat-cuda-emu: cannot map the race-check table\n");
      std::abort();
    }
    g_table = static_cast<std::atomic<Cell *> *>(p);
  }
  g_grid = grid;
  g_conflict = false;
  g_report.clear();
}

std::string launch_end() {
  if (!enabled()) return "";
  for (size_t index : g_chunks) {
    munmap(g_table[index].load(), kChunkBytes * sizeof(Cell));
    g_table[index].store(nullptr);
  }
  g_chunks.clear();
  return g_conflict.load() ? g_report : std::string();
}

void block_begin(uint64_t linear) {
  tl_block = enabled() && linear < kMaxBlock ? uint32_t(linear + 1) : 0;
}
void block_end() { tl_block = 0; }

void access(const void *p, size_t n, Access k, const void *pc) {
  const uint32_t b = tl_block;
  if (!b) return;  // host code, or an unchecked build
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a - tl_stacks_lo < tl_stacks_n || a - tl_tls_lo < tl_tls_n) return;
  if (g_conflict.load(std::memory_order_relaxed)) return;  // one report per launch
  if ((a + n) >> kAddressBits) return;
  size_t index = a >> kChunkBits;
  Cell *cells = chunk(index);
  for (uintptr_t x = a; x < a + n; ++x) {
    if ((x >> kChunkBits) != index) cells = chunk(index = x >> kChunkBits);
    if (!byte(cells[x & (kChunkBytes - 1)], k, b, p, n, pc)) return;
  }
}

}  // namespace relat_emu::detail::race

bool relat_emu::race_checked() { return detail::race::enabled(); }
