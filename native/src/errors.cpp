#include <cstdarg>
#include <cstdio>

#include "cpu_common.h"

namespace relat::cpu {
namespace {
thread_local std::string last_error;
}

relat_status fail(relat_status code, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  last_error = buf;
  return code;
}

void clear_error() { last_error.clear(); }

}  // namespace relat::cpu

extern "C" const char *relat_cpu_last_error(void) { return relat::cpu::last_error.c_str(); }
extern "C" const char *relat_cpu_version(void) { return RELAT_VERSION; }
