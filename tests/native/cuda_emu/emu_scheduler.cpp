// Scheduler of the CUDA emulation. Each block runs on one OS thread; each of its CUDA threads is a
// fiber with its own stack. A fiber runs until it reaches a scheduling point (barrier, warp
// primitive, __activemask, atomic), then the scheduler resumes a ready fiber chosen by the schedule
// policy (random by default, so every legal interleaving at those points can happen; priority and
// greedy are the adversarial orders, see cuda_emu.h). Barriers and warp primitives complete only
// when every thread they name has arrived; a block in which no thread can move is a deadlock and is
// reported with where each thread waits. Blocks are spread over a small pool of OS threads.
#include <sys/mman.h>
#include <unistd.h>

#include <cxxabi.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "emu_internal.h"
#include "emu_resources.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define RELAT_EMU_ASAN 1
#else
#define RELAT_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__x86_64__)
extern "C" void relat_emu_switch(void **save_sp, void *load_sp);
extern "C" void relat_emu_fiber_trampoline();
#endif

namespace relat_emu::detail {
namespace {

// ---- context switching --------------------------------------------------------------------------
// On x86-64 a hand-written switch saves the callee-saved registers on the old stack and swaps stack
// pointers: no system call, unlike swapcontext, which matters at ~10^4 switches per block.
#if defined(__x86_64__)
struct Context {
  void *sp = nullptr;
};
asm(R"(
  .text
  .p2align 4
  .type relat_emu_switch, @function
relat_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size relat_emu_switch, .-relat_emu_switch

  .p2align 4
  .type relat_emu_fiber_trampoline, @function
relat_emu_fiber_trampoline:
  callq *%r13
  ud2
  .size relat_emu_fiber_trampoline, .-relat_emu_fiber_trampoline
)");

inline void context_switch(Context &from, Context &to) { relat_emu_switch(&from.sp, to.sp); }

// The first switch into a fiber pops six zeroed registers (r13 = entry) and returns into the
// trampoline with a 16-byte aligned stack; rbp = 0 ends frame-pointer backtraces there.
void context_make(Context &c, char *stack_lo, size_t stack_size, void (*entry)()) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack_lo) + stack_size) & ~uintptr_t(15);
  void **sp = reinterpret_cast<void **>(top - 72);
  for (int i = 0; i < 9; ++i) sp[i] = nullptr;
  sp[2] = reinterpret_cast<void *>(entry);                        // r13
  sp[6] = reinterpret_cast<void *>(&relat_emu_fiber_trampoline);  // return address
  c.sp = sp;
}
#else
struct Context {
  ucontext_t uc;
};
inline void context_switch(Context &from, Context &to) { swapcontext(&from.uc, &to.uc); }
void context_make(Context &c, char *stack_lo, size_t stack_size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack_lo;
  c.uc.uc_stack.ss_size = stack_size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

// ASan must be told about every stack switch, or it reports false stack errors and mishandles the
// fake stacks of detect_stack_use_after_return.
inline void asan_start_switch(void **fake_save, const void *bottom, size_t size) {
#if RELAT_EMU_ASAN
  __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
  (void)fake_save, (void)bottom, (void)size;
#endif
}
inline void asan_finish_switch(void *fake_save, const void **old_bottom, size_t *old_size) {
#if RELAT_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_save, old_bottom, old_size);
#else
  (void)fake_save, (void)old_bottom, (void)old_size;
#endif
}
inline void asan_unpoison(void *p, size_t n) {
#if RELAT_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
inline void asan_poison(void *p, size_t n) {
#if RELAT_EMU_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

// ---- fibers, blocks, workers --------------------------------------------------------------------
enum class State : uint8_t { Ready, Running, Barrier, Warp, Active, Exited, Faulted };

struct Block;

struct Fiber {
  Context ctx;
  void *fake_stack = nullptr;
  char *stack_lo = nullptr;
  Block *block = nullptr;
  uint3 idx{0, 0, 0};
  unsigned tid = 0, lane = 0, warp = 0;
  State state = State::Ready;
  bool started = false;
  // The scheduling point the fiber waits at.
  const char *op = "";
  const char *file = "";
  int line = 0;
  WarpKind kind = WarpKind::SyncWarp;
  BarrierKind bkind = BarrierKind::Plain;
  unsigned mask = 0, size = 0;
  int arg = 0, width = 32;
  uint64_t value = 0, result = 0;
};

struct Block {
  const LaunchConfig *cfg = nullptr;
  KernelCall call{};
  uint3 idx{0, 0, 0};
  unsigned nthreads = 0;
  Fiber *fibers = nullptr;
  Schedule policy = Schedule::Random;
  std::vector<Fiber *> ready;  // Random: one pool, picked uniformly
  // Priority and Greedy: ready fibers per warp, and bit r of `ranks` set while the warp of rank r
  // has any; the highest set rank runs next (Greedy: after the current warp).
  Fiber *warp_ready[kMaxThreadsPerBlock / kWarpSize][kWarpSize];
  uint8_t warp_count[kMaxThreadsPerBlock / kWarpSize];
  uint8_t warp_rank[kMaxThreadsPerBlock / kWarpSize], rank_warp[kMaxThreadsPerBlock / kWarpSize];
  uint8_t lane_rank[kWarpSize];  // Priority: ties inside a warp, also drawn per block
  uint32_t ranks = 0;
  int current_warp = -1;  // Greedy: the warp that ran last
  unsigned at_barrier = 0, exited = 0;
  std::string fault;
  uint64_t rng = 0;
};

size_t page_size() { return size_t(sysconf(_SC_PAGESIZE)); }

size_t stack_bytes() {
  static const size_t bytes = [] {
    size_t kb = 256;
    if (const char *e = std::getenv("RELAT_EMU_STACK_KB"))
      kb = std::max<size_t>(64, std::strtoul(e, nullptr, 10));
    return (kb * 1024 + page_size() - 1) / page_size() * page_size();
  }();
  return bytes;
}

// Per OS thread: fiber stacks (allocated once, with a guard page below each) and the block state.
struct Worker {
  char *region = nullptr;
  size_t region_bytes = 0, stride = 0;
  std::vector<Fiber> fibers;
  Block block;
  Context sched;
  void *sched_fake = nullptr;
  const void *sched_bottom = nullptr;
  size_t sched_size = 0;

  Worker() : fibers(kMaxThreadsPerBlock) {
    stride = stack_bytes() + page_size();
    region_bytes = stride * kMaxThreadsPerBlock;
    void *p = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "relat-cuda-emu: cannot map %zu bytes of fiber stacks\n", region_bytes);
      std::abort();
    }
    region = static_cast<char *>(p);
    for (unsigned i = 0; i < kMaxThreadsPerBlock; ++i) {
      mprotect(region + i * stride, page_size(), PROT_NONE);  // overflow hits the guard page
      fibers[i].stack_lo = region + i * stride + page_size();
    }
    race::thread_init(region, region_bytes);
  }
  ~Worker() {
    asan_unpoison(region, region_bytes);
    munmap(region, region_bytes);
  }
};

thread_local Worker *tl_worker = nullptr;
thread_local Fiber *tl_fiber = nullptr;

Worker &this_worker() {
  thread_local Worker worker;
  tl_worker = &worker;
  return worker;
}

uint64_t splitmix(uint64_t &s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Message pieces are fixed buffers, not std::string: a faulting fiber is abandoned mid-call, and
// its temporaries are never destroyed.
struct Text {
  char s[320];
  const char *c_str() const { return s; }
};
Text thread_name(const Fiber &f) {
  Text t;
  std::snprintf(t.s, sizeof t.s, "(%u,%u,%u) [warp %u lane %u]", f.idx.x, f.idx.y, f.idx.z, f.warp,
                f.lane);
  return t;
}
Text where(const Fiber &f) {
  Text t;
  std::snprintf(t.s, sizeof t.s, "%s (%s:%d)", f.op, f.file, f.line);
  return t;
}
bool same_site(const Fiber &a, const Fiber &b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

Fiber *current(const char *op) {
  if (!tl_fiber) {
    std::fprintf(stderr, "relat-cuda-emu: %s called outside a kernel\n", op);
    std::abort();
  }
  return tl_fiber;
}

// ---- leaving and entering fibers ----------------------------------------------------------------
void suspend(Fiber *f) {
  Worker *w = tl_worker;
  asan_start_switch(&f->fake_stack, w->sched_bottom, w->sched_size);
  context_switch(f->ctx, w->sched);
  asan_finish_switch(f->fake_stack, nullptr, nullptr);
}

// Leaves a fiber for good (it exited or faulted); its fake stack is released.
[[noreturn]] void leave(Fiber *f) {
  Worker *w = tl_worker;
  asan_start_switch(nullptr, w->sched_bottom, w->sched_size);
  context_switch(f->ctx, w->sched);
  __builtin_unreachable();
}

[[noreturn]] __attribute__((format(printf, 2, 3))) void fault_here(Fiber *f, const char *fmt, ...) {
  Block &b = *f->block;
  if (b.fault.empty()) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    b.fault = buf;
  }
  f->state = State::Faulted;
  leave(f);
}

void make_ready(Block &b, Fiber &f) {
  f.state = State::Ready;
  if (b.policy == Schedule::Random) {
    b.ready.push_back(&f);
    return;
  }
  b.warp_ready[f.warp][b.warp_count[f.warp]++] = &f;
  b.ranks |= 1u << b.warp_rank[f.warp];
}

bool any_ready(const Block &b) {
  return b.policy == Schedule::Random ? !b.ready.empty() : b.ranks != 0;
}

// Takes the fiber to resume next off the ready set.
Fiber *take_next(Block &b) {
  if (b.policy == Schedule::Random) {
    const size_t k = splitmix(b.rng) % b.ready.size();
    Fiber *f = b.ready[k];
    b.ready[k] = b.ready.back();
    b.ready.pop_back();
    return f;
  }
  unsigned w;
  if (b.policy == Schedule::Greedy && b.current_warp >= 0 && b.warp_count[b.current_warp])
    w = unsigned(b.current_warp);
  else
    w = b.rank_warp[31 - __builtin_clz(b.ranks)];
  Fiber **lanes = b.warp_ready[w];
  const unsigned n = b.warp_count[w];
  unsigned k = 0;
  if (b.policy == Schedule::Priority) {
    for (unsigned i = 1; i < n; ++i)
      if (b.lane_rank[lanes[i]->lane] > b.lane_rank[lanes[k]->lane]) k = i;
  } else {
    k = unsigned(splitmix(b.rng) % n);
  }
  Fiber *f = lanes[k];
  lanes[k] = lanes[n - 1];
  if ((b.warp_count[w] = uint8_t(n - 1)) == 0) b.ranks &= ~(1u << b.warp_rank[w]);
  b.current_warp = int(w);
  return f;
}

// Per-block ranks. Priority: a random order of the warps (and of the lanes within each), so one
// warp runs as far as it can ahead of the others, and which one changes from block to block.
// Greedy: greedy-then-oldest, as GPU warp schedulers do: the running warp goes on until it
// blocks, then the lowest-numbered warp that can run.
void draw_ranks(Block &b) {
  constexpr unsigned kWarps = kMaxThreadsPerBlock / kWarpSize;
  for (unsigned i = 0; i < kWarps; ++i) b.rank_warp[i] = uint8_t(kWarps - 1 - i);
  for (unsigned i = 0; i < kWarpSize; ++i) b.lane_rank[i] = uint8_t(i);
  if (b.policy == Schedule::Priority) {
    for (unsigned i = kWarps - 1; i > 0; --i)
      std::swap(b.rank_warp[i], b.rank_warp[splitmix(b.rng) % (i + 1)]);
    for (unsigned i = kWarpSize - 1; i > 0; --i)
      std::swap(b.lane_rank[i], b.lane_rank[splitmix(b.rng) % (i + 1)]);
  }
  for (unsigned r = 0; r < kWarps; ++r) b.warp_rank[b.rank_warp[r]] = uint8_t(r);
  std::memset(b.warp_count, 0, sizeof b.warp_count);
  b.ranks = 0;
  b.current_warp = -1;
}

// ---- warp primitives ----------------------------------------------------------------------------
bool is_shuffle(WarpKind k) {
  return k == WarpKind::ShflIdx || k == WarpKind::ShflUp || k == WarpKind::ShflDown ||
         k == WarpKind::ShflXor;
}

unsigned lanes_in_warp(const Block &b, unsigned warp) {
  return std::min(kWarpSize, b.nthreads - warp * kWarpSize);
}

// Source lane of a shuffle, as PTX shfl.sync defines it: `width` splits the warp into segments;
// up/down/xor that leave the segment (xor: towards higher lanes only) return the lane's own value.
unsigned shuffle_source(const Fiber &l) {
  const int lane = int(l.lane), bval = l.arg & 31;
  const int segmask = (32 - l.width) & 31;
  const int cval = l.kind == WarpKind::ShflUp ? 0 : 31;
  const int max_lane = (lane & segmask) | (cval & ~segmask);
  const int min_lane = lane & segmask;
  int j = lane;
  bool in_range = false;
  switch (l.kind) {
    case WarpKind::ShflUp:
      j = lane - bval;
      in_range = j >= max_lane;
      break;
    case WarpKind::ShflDown:
      j = lane + bval;
      in_range = j <= max_lane;
      break;
    case WarpKind::ShflXor:
      j = lane ^ bval;
      in_range = j <= max_lane;
      break;
    default:
      j = min_lane | (bval & ~segmask);
      in_range = j <= max_lane;
      break;
  }
  return unsigned(in_range ? j : lane);
}

uint32_t reduce(WarpKind k, bool is_signed, uint32_t a, uint32_t b) {
  switch (k) {
    case WarpKind::ReduceAdd: return a + b;
    case WarpKind::ReduceMin:
      return is_signed ? uint32_t(std::min(int32_t(a), int32_t(b))) : std::min(a, b);
    case WarpKind::ReduceMax:
      return is_signed ? uint32_t(std::max(int32_t(a), int32_t(b))) : std::max(a, b);
    case WarpKind::ReduceAnd: return a & b;
    case WarpKind::ReduceOr: return a | b;
    default: return a ^ b;
  }
}

// Completes the warp primitive `g` waits at if every non-exited lane named in its mask waits at one
// with the same mask; lanes beyond the block's last thread count as exited.
void try_complete(Block &b, Fiber &g) {
  Fiber *lanes = b.fibers + g.warp * kWarpSize;
  const unsigned nl = lanes_in_warp(b, g.warp), m = g.mask;
  unsigned part = 0;
  for (unsigned i = 0; i < nl; ++i) {
    if (!((m >> i) & 1u) || lanes[i].state == State::Exited) continue;
    if (lanes[i].state != State::Warp || lanes[i].mask != m) return;  // not there yet
    part |= 1u << i;
  }
  Fiber *self = tl_fiber;
  for (unsigned i = 0; i < nl; ++i) {
    if (!((part >> i) & 1u)) continue;
    if (lanes[i].kind != g.kind || lanes[i].size != g.size)
      fault_here(self,
                 "mismatched warp primitives in warp %u: lane %u is at %s, lane %u at "
                 "%s (same mask 0x%08x)",
                 g.warp, g.lane, where(g).c_str(), i, where(lanes[i]).c_str(), m);
  }
  uint64_t common = 0;
  if (g.kind == WarpKind::Ballot) {
    for (unsigned i = 0; i < nl; ++i)
      if (((part >> i) & 1u) && lanes[i].value) common |= 1ull << i;
  } else if (g.kind == WarpKind::Any || g.kind == WarpKind::All) {
    bool any = false, all = true;
    for (unsigned i = 0; i < nl; ++i)
      if ((part >> i) & 1u) any |= lanes[i].value != 0, all &= lanes[i].value != 0;
    common = g.kind == WarpKind::Any ? any : all;
  } else if (!is_shuffle(g.kind) && g.kind != WarpKind::SyncWarp) {
    bool first = true;
    uint32_t acc = 0;
    for (unsigned i = 0; i < nl; ++i) {
      if (!((part >> i) & 1u)) continue;
      acc = first ? uint32_t(lanes[i].value)
                  : reduce(g.kind, g.arg != 0, acc, uint32_t(lanes[i].value));
      first = false;
    }
    common = acc;
  }
  for (unsigned i = 0; i < nl; ++i) {
    if (!((part >> i) & 1u)) continue;
    Fiber &l = lanes[i];
    if (is_shuffle(l.kind)) {
      const unsigned src = shuffle_source(l);
      if (src >= nl || !((part >> src) & 1u))
        fault_here(self,
                   "%s: lane %u of warp %u reads lane %u, which does not take part "
                   "(mask 0x%08x; exited, outside the mask or past the block's last "
                   "thread): the value is undefined on a GPU",
                   where(l).c_str(), i, g.warp, src, m);
      l.result = lanes[src].value;
    } else {
      l.result = common;
    }
  }
  for (unsigned i = 0; i < nl; ++i)
    if ((part >> i) & 1u) make_ready(b, lanes[i]);
}

// ---- barriers -----------------------------------------------------------------------------------
void release_barrier(Block &b) {
  const Fiber &first = b.fibers[0];
  unsigned count = 0;
  for (unsigned t = 0; t < b.nthreads; ++t) {
    const Fiber &f = b.fibers[t];
    if (!same_site(f, first) || f.bkind != first.bkind)
      fault_here(tl_fiber, "divergent barriers: thread %s waits at %s, thread %s at %s",
                 thread_name(first).c_str(), where(first).c_str(), thread_name(f).c_str(),
                 where(f).c_str());
    count += f.value != 0;
  }
  uint64_t result = 0;
  switch (first.bkind) {
    case BarrierKind::Count: result = count; break;
    case BarrierKind::And: result = count == b.nthreads; break;
    case BarrierKind::Or: result = count != 0; break;
    case BarrierKind::Plain: break;
  }
  b.at_barrier = 0;
  for (unsigned t = 0; t < b.nthreads; ++t) {
    b.fibers[t].result = result;
    make_ready(b, b.fibers[t]);
  }
}

void record(Fiber *f, const char *op, const char *file, int line) {
  f->op = op;
  f->file = file;
  f->line = line;
}

// ---- fiber body ---------------------------------------------------------------------------------
__attribute__((noinline)) bool run_kernel(Fiber *f) {
  try {
    f->block->call.invoke(f->block->call.ctx);
  } catch (...) {
    return false;  // the fault is raised after the handler, so the exception object is freed
  }
  return true;
}

[[noreturn]] void thread_exit(Fiber *f) {
  Block &b = *f->block;
  record(f, "exit", "", 0);
  f->state = State::Exited;
  ++b.exited;
  if (b.at_barrier > 0) {
    const Fiber *waiting = nullptr;
    for (unsigned t = 0; t < b.nthreads && !waiting; ++t)
      if (b.fibers[t].state == State::Barrier) waiting = &b.fibers[t];
    fault_here(f,
               "thread %s exited while %u threads wait at %s: every thread of the block "
               "must reach a __syncthreads",
               thread_name(*f).c_str(), b.at_barrier, where(*waiting).c_str());
  }
  // The exit may complete warp primitives that named this lane.
  Fiber *lanes = b.fibers + f->warp * kWarpSize;
  for (unsigned i = 0, nl = lanes_in_warp(b, f->warp); i < nl; ++i)
    if (lanes[i].state == State::Warp && ((lanes[i].mask >> f->lane) & 1u))
      try_complete(b, lanes[i]);
  leave(f);
}

// Entered by the first switch into a fiber; never returns. Not instrumented, so no redzones are
// left behind in a frame that is never popped.
__attribute__((no_sanitize_address)) void relat_emu_fiber_main() {
  Fiber *f = tl_fiber;
  Worker *w = tl_worker;
  asan_finish_switch(nullptr, &w->sched_bottom, &w->sched_size);
  if (!run_kernel(f)) fault_here(f, "a C++ exception escaped the kernel");
  thread_exit(f);
}

// ---- running a block ----------------------------------------------------------------------------
void resume(Worker &w, Fiber *f) {
  tl_fiber = f;
  tl_builtins.thread_idx = f->idx;
  f->state = State::Running;
  f->started = true;
  asan_start_switch(&w.sched_fake, f->stack_lo, stack_bytes());
  context_switch(w.sched, f->ctx);
  asan_finish_switch(w.sched_fake, nullptr, nullptr);
  tl_fiber = nullptr;
}

// When nothing can run, lanes waiting at __activemask learn who else is there: the lanes of their
// warp at the same __activemask call.
bool resolve_active_masks(Block &b) {
  bool any = false;
  for (unsigned t = 0; t < b.nthreads; ++t) {
    Fiber &f = b.fibers[t];
    if (f.state != State::Active) continue;
    Fiber *lanes = b.fibers + f.warp * kWarpSize;
    unsigned mask = 0;
    for (unsigned i = 0, nl = lanes_in_warp(b, f.warp); i < nl; ++i)
      if (lanes[i].state == State::Active && same_site(lanes[i], f)) mask |= 1u << i;
    for (unsigned i = 0; i < kWarpSize; ++i)
      if ((mask >> i) & 1u) {
        lanes[i].result = mask;
        make_ready(b, lanes[i]);
      }
    any = true;
  }
  return any;
}

std::string deadlock_message(const Block &b) {
  struct Group {
    const Fiber *first;
    unsigned count;
  };
  std::vector<Group> groups;
  for (unsigned t = 0; t < b.nthreads; ++t) {
    const Fiber &f = b.fibers[t];
    if (f.state == State::Exited) continue;
    bool found = false;
    for (Group &g : groups)
      if (g.first->state == f.state && same_site(*g.first, f) && g.first->mask == f.mask &&
          std::strcmp(g.first->op, f.op) == 0) {
        ++g.count;
        found = true;
        break;
      }
    if (!found) groups.push_back({&f, 1});
  }
  std::string m = "deadlock: no thread can proceed;";
  for (const Group &g : groups) {
    m += format(" %u thread(s) wait at %s", g.count, where(*g.first).c_str());
    if (g.first->state == State::Warp) m += format(" with mask 0x%08x", g.first->mask);
    m += format(" (first: %s);", thread_name(*g.first).c_str());
  }
  if (b.exited) m += format(" %u thread(s) exited;", b.exited);
  m += " a barrier or warp primitive names threads that wait elsewhere or exited (divergent "
       "__syncthreads, or a shuffle whose mask does not match its participants)";
  return m;
}

bool run_block(Worker &w, const LaunchConfig &cfg, KernelCall call, uint64_t linear,
               uint64_t seed, Schedule policy) {
  Block &b = w.block;
  const dim3 g = cfg.grid, bd = cfg.block;
  b.cfg = &cfg;
  b.call = call;
  b.idx = uint3{unsigned(linear % g.x), unsigned(linear / g.x % g.y), unsigned(linear / g.x / g.y)};
  b.nthreads = bd.x * bd.y * bd.z;
  b.fibers = w.fibers.data();
  b.ready.clear();
  b.at_barrier = b.exited = 0;
  b.fault.clear();
  b.rng = seed ^ (linear * 0xd1342543de82ef95ull);
  b.policy = policy;
  if (policy != Schedule::Random) draw_ranks(b);
  tl_builtins.block_idx = b.idx;
  tl_builtins.block_dim = bd;
  tl_builtins.grid_dim = g;
  for (unsigned t = 0; t < b.nthreads; ++t) {
    Fiber &f = w.fibers[t];
    f.block = &b;
    f.tid = t;
    f.lane = t % kWarpSize;
    f.warp = t / kWarpSize;
    f.idx = uint3{t % bd.x, t / bd.x % bd.y, t / bd.x / bd.y};
    f.fake_stack = nullptr;
    f.started = false;
    f.mask = 0;
    record(&f, "start", "", 0);
    // Stack tops staggered by cache lines: equally spaced stacks would all map to one L1 set.
    context_make(f.ctx, f.stack_lo, stack_bytes() - (t % 64) * 64, &relat_emu_fiber_main);
    make_ready(b, f);
  }
  // Shared memory holds garbage when a block starts; NaN bytes make a read before write visible.
  std::memset(relat_emu_dynamic_shared, 0xff, cfg.smem);

  race::block_begin(linear);
  for (;;) {
    while (any_ready(b) && b.fault.empty()) resume(w, take_next(b));
    if (!b.fault.empty() || b.exited == b.nthreads) break;
    if (!resolve_active_masks(b)) {
      b.fault = deadlock_message(b);
      break;
    }
  }
  race::block_end();
  if (b.fault.empty()) return true;
  // Abandoned fibers leave poisoned redzones on their stacks; clear them before the stacks are
  // reused.
  for (unsigned t = 0; t < b.nthreads; ++t)
    if (w.fibers[t].started && w.fibers[t].state != State::Exited)
      asan_unpoison(w.fibers[t].stack_lo, stack_bytes());
  return false;
}

// ---- the grid: blocks over a pool of OS threads -------------------------------------------------
struct Job {
  const LaunchConfig *cfg;
  KernelCall call;
  uint64_t nblocks;
  uint64_t seed;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> abort{false};
  std::mutex mutex;
  std::string fault;
};

void work(Job &job) {
  Worker &w = this_worker();
  // Dynamic shared memory past what the launch asked for is poisoned, so ASan reports overruns.
  const size_t asked = (job.cfg->smem + 7) & ~size_t(7);
  asan_poison(relat_emu_dynamic_shared + asked, kMaxSharedOptinSm90 - asked);
  const Schedule policy = relat_emu::schedule();
  while (!job.abort.load(std::memory_order_relaxed)) {
    const uint64_t i = job.next.fetch_add(1);
    if (i >= job.nblocks) break;
    if (!run_block(w, *job.cfg, job.call, i, job.seed, policy)) {
      std::lock_guard<std::mutex> lock(job.mutex);
      if (job.fault.empty()) {
        const uint3 bi = w.block.idx;
        job.fault = format("block (%u,%u,%u): %s", bi.x, bi.y, bi.z, w.block.fault.c_str());
      }
      job.abort = true;
    }
  }
  asan_unpoison(relat_emu_dynamic_shared, kMaxSharedOptinSm90);
}

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread &t : threads_) t.join();
  }

  void run(Job &job, unsigned workers) {
    const unsigned helpers = unsigned(std::min<uint64_t>(workers - 1, job.nblocks - 1));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (threads_.size() < helpers) {
        const unsigned index = unsigned(threads_.size());
        threads_.emplace_back([this, index] { loop(index); });
      }
      job_ = &job;
      wanted_ = pending_ = helpers;
      ++generation_;
    }
    if (helpers) wake_.notify_all();
    work(job);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(unsigned index) {
    uint64_t seen = 0;
    for (;;) {
      Job *job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= wanted_) continue;
        job = job_;
      }
      work(*job);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  Job *job_ = nullptr;
  uint64_t generation_ = 0;
  unsigned wanted_ = 0, pending_ = 0;
  bool stop_ = false;
};

Pool &pool() {
  static Pool p;
  return p;
}

// Runs every block of the launch; a conflict between blocks (race-checked builds) is its fault.
void run_grid(Job &job) {
  race::launch_begin(job.cfg->grid);
  pool().run(job, worker_threads());
  const std::string conflict = race::launch_end();
  if (!conflict.empty() && job.fault.empty()) job.fault = conflict;
}

std::atomic<uint64_t> g_seed{0};
std::atomic<bool> g_seed_set{false};
std::atomic<int> g_schedule{-1};
std::atomic<unsigned> g_workers{0};
std::atomic<uint64_t> g_launches{0};
std::mutex g_launch_mutex;
std::atomic<bool> g_dry_run{false};
std::vector<PlannedLaunch> g_planned;  // guarded by g_launch_mutex

}  // namespace

// ---- scheduling points called from kernels ------------------------------------------------------
uint64_t warp_op(WarpKind kind, unsigned mask, uint64_t value, unsigned size, int arg, int width,
                 const char *op, const char *file, int line) {
  Fiber *f = current(op);
  record(f, op, file, line);
  if (!((mask >> f->lane) & 1u))
    fault_here(f, "%s: lane %u of warp %u is not in its own mask 0x%08x", where(*f).c_str(),
               f->lane, f->warp, mask);
  if (is_shuffle(kind) && (width < 1 || width > 32 || (width & (width - 1))))
    fault_here(f, "%s: width %d is not a power of two in [1, 32]", where(*f).c_str(), width);
  f->kind = kind;
  f->mask = mask;
  f->value = value;
  f->size = size;
  f->arg = arg;
  f->width = width;
  f->state = State::Warp;
  try_complete(*f->block, *f);
  suspend(f);
  return f->result;
}

int barrier(BarrierKind kind, int pred, const char *op, const char *file, int line) {
  Fiber *f = current(op);
  Block &b = *f->block;
  record(f, op, file, line);
  if (b.exited > 0)
    fault_here(f,
               "thread %s reached %s after %u of the block's %u threads exited: every "
               "thread of the block must reach a __syncthreads",
               thread_name(*f).c_str(), where(*f).c_str(), b.exited, b.nthreads);
  f->bkind = kind;
  f->value = pred != 0;
  f->mask = 0;
  f->state = State::Barrier;
  if (++b.at_barrier == b.nthreads) release_barrier(b);
  suspend(f);
  return int(f->result);
}

unsigned active_mask(const char *file, int line) {
  Fiber *f = current("__activemask");
  record(f, "__activemask", file, line);
  f->mask = 0;
  f->state = State::Active;
  suspend(f);
  return unsigned(f->result);
}

void atomic_point(const char *op) {
  Fiber *f = tl_fiber;
  if (!f) return;  // host code (a test) using the atomics directly
  // Priority would resume this same fiber (nothing became ready since it was picked, and it
  // outranks every ready fiber); Greedy runs the warp on. Skipping the switch saves its cost.
  if (f->block->policy != Schedule::Random) return;
  record(f, op, "", 0);
  make_ready(*f->block, *f);
  suspend(f);
}

void trap(const char *file, int line) {
  Fiber *f = current("__trap");
  record(f, "__trap", file, line);
  fault_here(f, "__trap() at %s:%d", file, line);
}

// ---- launch -------------------------------------------------------------------------------------
// A launch the hardware refuses: the same error, and a line saying why (the hardware says only the
// error's name).
static std::string demangle(const std::string &symbol) {
  int status = 0;
  char *d = abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status);
  std::string out = d ? d : symbol;
  std::free(d);
  return out;
}

static void refuse(const LaunchConfig &cfg, const std::string &symbol, cudaError_t e,
                   const std::string &why) {
  std::fprintf(stderr, "relat-cuda-emu: launch of %s%s at %s:%d refused: %s -> %s\n", cfg.name,
               symbol.empty() ? "" : (" (" + demangle(symbol) + ")").c_str(), cfg.file, cfg.line,
               why.c_str(), cudaGetErrorName(e));
  set_last_error(e);
}

void launch(const LaunchConfig &cfg, KernelCall call) {
  if (tl_fiber) {
    std::fprintf(stderr,
                 "relat-cuda-emu: %s launched from inside a kernel (dynamic parallelism is "
                 "not emulated)\n",
                 cfg.name);
    std::abort();
  }
  if (cudaError_t e = sticky_error()) return set_last_error(e);
  const dim3 g = cfg.grid, b = cfg.block;
  if (const int device = stream_device(cfg.stream); device != tl_device) {
    refuse(cfg, cfg.name, cudaErrorInvalidResourceHandle,
           format("its stream belongs to device %d while device %d is current", device, tl_device));
    return;
  }
  const bool block_ok = b.x >= 1 && b.y >= 1 && b.z >= 1 && b.x <= kMaxBlockDimXY &&
                        b.y <= kMaxBlockDimXY && b.z <= kMaxBlockDimZ &&
                        uint64_t(b.x) * b.y * b.z <= kMaxThreadsPerBlock;
  const bool grid_ok = g.x >= 1 && g.y >= 1 && g.z >= 1 && g.x <= kMaxGridDimX &&
                       g.y <= kMaxGridDimYZ && g.z <= kMaxGridDimYZ;
  const KernelLimits limits = kernel_limits(cfg.func);
  if (!block_ok || !grid_ok) {
    refuse(cfg, limits.symbol, cudaErrorInvalidConfiguration,
           format("block (%u,%u,%u) or grid (%u,%u,%u) outside the device's dimensions", b.x, b.y,
                  b.z, g.x, g.y, g.z));
    return;
  }
  if (limits.status == KernelLimits::NoTable) {
    static std::once_flag note;
    std::call_once(note, [] {
      std::fprintf(stderr,
                   "relat-cuda-emu: note: no table of nvcc's kernel resources (nvcc not found at "
                   "build time): launch bounds, register and static shared memory limits are not "
                   "checked\n");
    });
  } else if (limits.status == KernelLimits::Unlisted && is_library_kernel(limits.symbol)) {
    std::fprintf(stderr,
                 "relat-cuda-emu: %s (%s) launched at %s:%d is not in the table of nvcc's kernel "
                 "resources: its launch could not be checked\n",
                 cfg.name, limits.symbol.c_str(), cfg.file, cfg.line);
    std::abort();
  }
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  const KernelLimits::Arch arch = limits.at(device_arch());
  if (threads > arch.max_threads) {
    refuse(cfg, limits.symbol, cudaErrorLaunchOutOfResources,
           format("a block of %llu threads exceeds the kernel's %u on sm_%d (%s)",
                  (unsigned long long)threads, arch.max_threads, arch.arch,
                  arch.register_limited ? format("%d registers per thread", arch.registers).c_str()
                                        : "its __launch_bounds__"));
    return;
  }
  if (const size_t allowed = dynamic_shared_limit(cfg.func); cfg.smem > allowed) {
    refuse(cfg, limits.symbol, cudaErrorInvalidValue,
           format("%zu bytes of dynamic shared memory + %zu static exceed the kernel's limit of "
                  "%zu dynamic (48 KiB in all unless raised by cudaFuncSetAttribute)",
                  cfg.smem, limits.static_shared, allowed));
    return;
  }

  if (g_dry_run) {
    std::lock_guard<std::mutex> lock(g_launch_mutex);
    g_planned.push_back(PlannedLaunch{limits.symbol.empty() ? cfg.name : demangle(limits.symbol), g,
                                      b, cfg.smem, limits.static_shared, arch.max_threads,
                                      dynamic_shared_limit(cfg.func), tl_device});
    return;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  Job job;
  job.cfg = &cfg;
  job.call = call;
  job.nblocks = uint64_t(g.x) * g.y * g.z;
  uint64_t s = schedule_seed() ^ (g_launches.fetch_add(1) * 0x9e3779b97f4a7c15ull);
  job.seed = splitmix(s);
  run_grid(job);
  if (!job.fault.empty())
    raise_fault(
        format("kernel %s launched at %s:%d, %s", cfg.name, cfg.file, cfg.line, job.fault.c_str()));
}

}  // namespace relat_emu::detail

namespace relat_emu {

void set_schedule_seed(uint64_t seed) {
  detail::g_seed = seed;
  detail::g_seed_set = true;
}

uint64_t schedule_seed() {
  if (!detail::g_seed_set.load()) {
    uint64_t s;
    if (const char *e = std::getenv("RELAT_EMU_SEED"))
      s = std::strtoull(e, nullptr, 0);
    else
      s = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    set_schedule_seed(s);
  }
  return detail::g_seed.load();
}

void set_dry_run(bool on) { detail::g_dry_run = on; }

std::vector<PlannedLaunch> take_planned_launches() {
  std::lock_guard<std::mutex> lock(detail::g_launch_mutex);
  return std::move(detail::g_planned);
}

void set_schedule(Schedule s) { detail::g_schedule = int(s); }

Schedule schedule() {
  if (detail::g_schedule.load() < 0) {
    Schedule s = Schedule::Random;
    if (const char *e = std::getenv("RELAT_EMU_SCHEDULE"); e && *e && !parse_schedule(e, &s)) {
      std::fprintf(stderr, "relat-cuda-emu: RELAT_EMU_SCHEDULE=%s: not random, priority or greedy\n",
                   e);
      std::exit(2);
    }
    set_schedule(s);
  }
  return Schedule(detail::g_schedule.load());
}

const char *schedule_name(Schedule s) {
  switch (s) {
    case Schedule::Random: return "random";
    case Schedule::Priority: return "priority";
    case Schedule::Greedy: return "greedy";
  }
  return "?";
}

bool parse_schedule(const char *name, Schedule *s) {
  for (Schedule c : {Schedule::Random, Schedule::Priority, Schedule::Greedy})
    if (std::strcmp(name, schedule_name(c)) == 0) {
      *s = c;
      return true;
    }
  return false;
}

const char *schedule_name() { return schedule_name(schedule()); }

void set_worker_threads(unsigned n) { detail::g_workers = std::max(1u, std::min(n, 64u)); }

unsigned worker_threads() {
  if (detail::g_workers.load() == 0) {
    unsigned n = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
    if (const char *e = std::getenv("RELAT_EMU_THREADS"))
      n = unsigned(std::strtoul(e, nullptr, 10));
    set_worker_threads(n);
  }
  return detail::g_workers.load();
}

}  // namespace relat_emu
