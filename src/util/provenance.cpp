// util/provenance.cpp: see provenance.h (POSIX).
#include "util/provenance.h"

#include <unistd.h>

#include <climits>
#include <ctime>

namespace ot {

std::string hostname() {
#ifdef HOST_NAME_MAX
  char buf[HOST_NAME_MAX + 1] = {};
#else
  char buf[256] = {};
#endif
  // POSIX leaves truncation unterminated, hence the zeroed buffer one byte larger.
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ot
