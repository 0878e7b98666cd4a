// util/memory.cpp: see memory.h (Linux: /proc/self/status, /proc/self/clear_refs).
#include "util/memory.h"

#include <cstdio>
#include <cstring>

namespace ot {

namespace {
double status_field_mib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0.0;
  char line[256];
  double kib = 0.0;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = std::strtod(line + n + 1, nullptr);
      break;
    }
  }
  std::fclose(f);
  return kib / 1024.0;
}
}  // namespace

double peak_rss_mib() { return status_field_mib("VmHWM"); }
double current_rss_mib() { return status_field_mib("VmRSS"); }

bool reset_peak_rss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  bool ok = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && ok;
}

}  // namespace ot
