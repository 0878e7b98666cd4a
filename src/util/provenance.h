// util/provenance.h: small facts about where and when something ran (host name, UTC time),
// recorded in result files and logs. Torch-free.
#pragma once

#include <string>

namespace ot {

// The machine's host name (gethostname), or "unknown" if it cannot be read.
std::string hostname();

// The current UTC time as ISO 8601 with second precision, e.g. "2024-05-01T12:34:56Z".
std::string utc_now_iso8601();

}  // namespace ot
