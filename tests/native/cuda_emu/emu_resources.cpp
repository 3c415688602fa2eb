// Kernel limits for the emulation's launch checks. The emulated kernel is known only by its
// address: its mangled name comes from the executable's own symbol table (kernels live in anonymous
// namespaces: local symbols, which dladdr does not see), and is matched against nvcc's names with
// the one part the two compilers spell differently, the anonymous namespace, made equal.
#include "emu_resources.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace relat_emu::detail {
namespace {

// g++ writes the anonymous namespace as 12_GLOBAL__N_1, nvcc as
// <n>_GLOBAL__N__<hash>_<file>_<hash>.
std::string normalise(const std::string &mangled) {
  static const char kAnon[] = "_GLOBAL__N_";
  std::string out;
  size_t i = 0;
  while (i < mangled.size()) {
    const size_t at = mangled.find(kAnon, i);
    if (at == std::string::npos) break;
    size_t digits = at;
    while (digits > i && std::isdigit(static_cast<unsigned char>(mangled[digits - 1]))) --digits;
    if (digits == at) {  // not a length-prefixed source name
      out.append(mangled, i, at + 1 - i);
      i = at + 1;
      continue;
    }
    const size_t length = std::stoul(mangled.substr(digits, at - digits));
    out.append(mangled, i, digits - i);
    out += "@anon";
    i = std::min(mangled.size(), at + length);
  }
  out.append(mangled, i, std::string::npos);
  return out;
}

// Address -> mangled name of every function in the running executable's .symtab.
std::unordered_map<uintptr_t, std::string> read_function_symbols() {
  std::unordered_map<uintptr_t, std::string> symbols;
  uintptr_t bias = 0;  // the first object dl_iterate_phdr reports is the executable
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *out) {
        *static_cast<uintptr_t *>(out) = info->dlpi_addr;
        return 1;
      },
      &bias);
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return symbols;
  struct stat st;
  void *map = fstat(fd, &st) == 0 ? mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                                  : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return symbols;
  const auto *base = static_cast<const unsigned char *>(map);
  const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(base);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64) {
    const auto *sections = reinterpret_cast<const Elf64_Shdr *>(base + eh->e_shoff);
    for (unsigned s = 0; s < eh->e_shnum; ++s) {
      if (sections[s].sh_type != SHT_SYMTAB) continue;
      const char *names =
          reinterpret_cast<const char *>(base + sections[sections[s].sh_link].sh_offset);
      const auto *sym = reinterpret_cast<const Elf64_Sym *>(base + sections[s].sh_offset);
      for (size_t k = 0, n = sections[s].sh_size / sizeof(Elf64_Sym); k < n; ++k)
        if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_value != 0)
          symbols.emplace(bias + sym[k].st_value, names + sym[k].st_name);
    }
  }
  munmap(map, size_t(st.st_size));
  return symbols;
}

// Threads per block a kernel's registers allow on sm_80 / sm_90: 64K registers per block, allocated
// per warp in units of 256.
unsigned register_thread_limit(int registers) {
  if (registers <= 0) return 1024;
  const unsigned per_warp = (unsigned(registers) * 32 + 255) / 256 * 256;
  return std::min(1024u, 65536u / per_warp * 32);
}

}  // namespace

bool is_library_kernel(const std::string &symbol) { return symbol.rfind("_ZN5relat4cuda", 0) == 0; }

KernelLimits::Arch KernelLimits::at(int arch) const {
  if (arch == 80 || arch == 90) return archs[arch == 90];
  return archs[1].max_threads < archs[0].max_threads ? archs[1] : archs[0];
}

KernelLimits kernel_limits(const void *func) {
  static std::mutex mutex;
  static std::unordered_map<uintptr_t, std::string> *symbols = nullptr;
  static std::unordered_map<const void *, KernelLimits> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(func); it != cache.end()) return it->second;
  KernelLimits limits;
  if (kCompiledKernels[0].name) {
    if (!symbols) symbols = new std::unordered_map<uintptr_t, std::string>(read_function_symbols());
    if (auto it = symbols->find(reinterpret_cast<uintptr_t>(func)); it != symbols->end())
      limits.symbol = it->second;
    limits.status = KernelLimits::Unlisted;
    const std::string key = normalise(limits.symbol);
    for (const CompiledKernel *k = kCompiledKernels; !limits.symbol.empty() && k->name; ++k) {
      if ((k->arch != 80 && k->arch != 90) || normalise(k->name) != key) continue;
      limits.status = KernelLimits::Known;
      KernelLimits::Arch &a = limits.archs[k->arch == 90];
      const unsigned by_registers = register_thread_limit(k->registers);
      a.max_threads = std::min(unsigned(k->max_threads), by_registers);
      a.registers = k->registers;
      a.register_limited = by_registers < unsigned(k->max_threads);
      limits.static_shared = std::max(limits.static_shared, size_t(k->static_shared));
    }
  }
  cache.emplace(func, limits);
  return limits;
}

}  // namespace relat_emu::detail
