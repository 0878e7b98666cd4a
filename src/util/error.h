// util/error.h: the one exception type offsite throws for anything a user can cause
// (bad file, bad key, bad value), plus helpers that build its message from parts.
// The CLI catches ot::Error, prints "ot: <message>" and exits non-zero; every message
// names the file/key/line at fault and says what was expected.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ot {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
}  // namespace detail

// Throws ot::Error whose message is the concatenation of `parts`.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

// Throws ot::Error with the concatenated message unless `cond` holds.
#define OT_REQUIRE(cond, ...)         \
  do {                                \
    if (!(cond)) ::ot::fail(__VA_ARGS__); \
  } while (0)

}  // namespace ot
