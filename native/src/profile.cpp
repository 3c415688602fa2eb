// The profiling markers of relat.h on the CPU library: no-ops, so that Java code can call the same
// four functions whichever library serves the device. (Nsight has nothing to capture on the CPU;
// `relat solve --profile` prints the phase breakdown there instead.)
#include "cpu_common.h"

extern "C" relat_status relat_cpu_profile_range_push(const char *name) {
  if (name == nullptr) return relat::cpu::fail(RELAT_ERR_INVALID_ARGUMENT, "profile_range_push: name is NULL");
  return RELAT_OK;
}
extern "C" relat_status relat_cpu_profile_range_pop(void) { return RELAT_OK; }
extern "C" relat_status relat_cpu_profile_start(void) { return RELAT_OK; }
extern "C" relat_status relat_cpu_profile_stop(void) { return RELAT_OK; }
