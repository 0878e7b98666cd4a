// util/memory.h: process memory figures for efficiency reports: peak and current
// resident set size (CPU) in MiB, and a reset of the peak so one process can measure
// several configurations side by side.
#pragma once

namespace ot {

double peak_rss_mib();     // high-water mark (VmHWM) since start or the last reset
double current_rss_mib();  // now (VmRSS)
// Resets the high-water mark to the current RSS (Linux >= 4.0); false if unsupported.
bool reset_peak_rss();

}  // namespace ot
