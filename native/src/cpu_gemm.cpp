// Which GEMM the CPU fused cross-entropy uses (relat.h, relat_cpu_set_gemm).
#include "cpu_gemm.h"

#include <dlfcn.h>

#include <atomic>

#include "cpu_common.h"

namespace relat::cpu {
namespace {

// libtorch links libopenblas.so.0, so in the Java library it is loaded before librelat_cpu.
// RTLD_NOLOAD: use the copy already in the process (the one libtorch's own GEMMs use), never load
// another one behind the caller's back.
Sgemm find_openblas() {
  void *lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  return lib ? reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm")) : nullptr;
}

Sgemm openblas() {
  static const Sgemm found = find_openblas();
  return found;
}

std::atomic<int> setting{RELAT_CPU_GEMM_AUTO};

}  // namespace

Sgemm sgemm_in_use() {
  return setting.load() == RELAT_CPU_GEMM_BUILTIN ? nullptr : openblas();
}

}  // namespace relat::cpu

using namespace relat::cpu;

extern "C" relat_status relat_cpu_set_gemm(relat_cpu_gemm gemm) {
  if (gemm != RELAT_CPU_GEMM_AUTO && gemm != RELAT_CPU_GEMM_BUILTIN && gemm != RELAT_CPU_GEMM_OPENBLAS)
    return fail(RELAT_ERR_INVALID_ARGUMENT, "set_gemm: unknown GEMM %d (0 auto, 1 builtin, 2 openblas)",
                int(gemm));
  if (gemm == RELAT_CPU_GEMM_OPENBLAS && openblas() == nullptr)
    return fail(RELAT_ERR_UNSUPPORTED,
                "set_gemm: OpenBLAS is not loaded in this process (no libopenblas.so.0 with cblas_sgemm)");
  setting.store(gemm);
  return RELAT_OK;
}

extern "C" relat_cpu_gemm relat_cpu_gemm_in_use(void) {
  return sgemm_in_use() ? RELAT_CPU_GEMM_OPENBLAS : RELAT_CPU_GEMM_BUILTIN;
}
