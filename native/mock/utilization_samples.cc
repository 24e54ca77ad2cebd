// Per-process utilization samples as the driver keeps them: each process is sampled once per period at
// its own phase (so timestamps differ between processes), the driver keeps the last few samples of each,
// and answers those newer than lastSeenTimeStamp (all it keeps when lastSeenTimeStamp is 0). Processes
// with all-zero utilization have no samples. A device with "processUtilizationJunk" adds, to every
// answer that has samples, the junk real drivers have returned: a zero entry (pid 0, timestamp 0), SM
// above 100%, a pid in no process list, and a timestamp an hour in the future.
#include "mock_state.h"

namespace vgmock {

namespace {
constexpr unsigned kSamplesKept = 3;
constexpr std::uint32_t kForeignPid = 0x7FFFFFF0u;
constexpr unsigned long long kFutureMicros = 3600ull * 1000000ull;
}  // namespace

std::vector<UtilizationSample> utilizationSamples(const Session &s, const Device &d, unsigned long long lastSeen) {
  const std::uint64_t periodUs = std::uint64_t{s.scenario.processUtilizationPeriodMs} * 1000u;
  const std::uint64_t nowUs = clockNs(CLOCK_REALTIME) / 1000u;
  std::vector<UtilizationSample> samples;
  for (const Process &p : d.processes) {
    if (!p.hasUtilization()) continue;
    const std::uint64_t phase = (std::uint64_t{p.pid} * 2654435761u) % periodUs;
    if (nowUs < phase) continue;
    const std::uint64_t latest = (nowUs - phase) / periodUs * periodUs + phase;
    for (unsigned k = kSamplesKept; k-- > 0;) {
      if (latest < k * periodUs) continue;
      const std::uint64_t stamp = latest - k * periodUs;
      if (stamp == 0 || stamp <= lastSeen) continue;
      samples.push_back({p.pid, stamp, p.smUtilPercent, p.memUtilPercent, p.encUtilPercent, p.decUtilPercent});
    }
  }
  if (d.processUtilizationJunk && !samples.empty()) {
    const UtilizationSample real = samples.back();
    samples.push_back({0, 0, 0, 0, 0, 0});
    samples.push_back({real.pid, real.timeStamp, 250, real.mem, real.enc, real.dec});
    samples.push_back({kForeignPid, real.timeStamp, 40, 10, 0, 0});
    samples.push_back({real.pid, nowUs + kFutureMicros, real.sm, real.mem, real.enc, real.dec});
  }
  return samples;
}

}  // namespace vgmock
