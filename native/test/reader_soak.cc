// Soak of the native read path without Node: passes back to back (no sleep) through DevicePass into a
// triple buffer, the sampler thread's own path, with a reader taking snapshots in between. Resident
// memory is read after a warm-up tenth of the passes and at the end; the drift must stay within 1 MiB.
//   reader_soak <mock libnvidia-ml.so.1> <passes>
// Prints one JSON line; exits 1 when the drift is over the limit, 2 when it cannot run.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "device_pass.h"
#include "latest_buffer.h"
#include "nvml_loader.h"

using namespace vramguard;

namespace {

constexpr long kMaxDriftKiB = 1024;

long ResidentKiB() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return -1;
  long size = 0, resident = 0;
  const int read = std::fscanf(statm, "%ld %ld", &size, &resident);
  std::fclose(statm);
  return read == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: reader_soak <mock library> <passes>\n");
    return 2;
  }
  const long passes = std::atol(argv[2]);
  if (passes < 10) {
    std::fprintf(stderr, "reader_soak: passes must be at least 10, got %s\n", argv[2]);
    return 2;
  }
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  const NvmlAcquireResult acquired = nvml.Acquire(argv[1]);
  if (!acquired.ok) {
    std::fprintf(stderr, "reader_soak: %s\n", acquired.reason.c_str());
    return 2;
  }
  const SystemInfo system = ReadSystemInfo(nvml.table());
  DevicePass pass;
  ReadFailure failure;
  if (!pass.Open(nvml.table(), system, {}, &failure)) {
    std::fprintf(stderr, "reader_soak: %s\n", failure.reason.c_str());
    return 2;
  }
  LatestBuffer<Snapshot> latest;
  const long warmup = passes / 10;
  long startKiB = 0;
  size_t processesSeen = 0;
  const uint64_t started = NowNanosMonotonic();
  for (long i = 0; i < passes; ++i) {
    pass.Read(latest.back());
    latest.Publish();
    if (i % 3 == 0) {
      const Snapshot& snapshot = latest.Latest();
      processesSeen = snapshot.devices.empty() ? 0 : snapshot.devices[0].processes.size();
    }
    if (i + 1 == warmup) startKiB = ResidentKiB();
  }
  const double seconds = (NowNanosMonotonic() - started) / 1e9;
  const long endKiB = ResidentKiB();
  const long drift = endKiB - startKiB;
  nvml.Release();
  std::printf(
      "{\"passes\":%ld,\"devices\":%zu,\"processesOnDevice0\":%zu,\"seconds\":%.2f,\"rssAfterWarmupKiB\":%ld,"
      "\"rssEndKiB\":%ld,\"driftKiB\":%ld,\"limitKiB\":%ld}\n",
      passes, pass.devices().size(), processesSeen, seconds, startKiB, endKiB, drift, kMaxDriftKiB);
  return startKiB > 0 && drift <= kMaxDriftKiB ? 0 : 1;
}
