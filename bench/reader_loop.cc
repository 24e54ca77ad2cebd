// The native reader without Node, for instruction counts: N passes of DeviceReader::Read over every
// device into rotating triple-buffer slots, exactly as the sampler thread does (minus its sleep).
//   reader_loop <libnvidia-ml.so.1> <passes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "device_reader.h"
#include "nvml_loader.h"

using namespace vramguard;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: reader_loop <library> <passes>\n");
    return 2;
  }
  NvmlLibrary& nvml = NvmlLibrary::Instance();
  const NvmlAcquireResult acquired = nvml.Acquire(argv[1]);
  if (!acquired.ok) {
    std::fprintf(stderr, "%s\n", acquired.reason.c_str());
    return 1;
  }
  const SystemInfo system = ReadSystemInfo(nvml.table());
  const DriverTraits traits = DriverTraits::FromVersion(system.driverVersion.value);
  std::vector<std::unique_ptr<DeviceReader>> readers;
  for (uint32_t i = 0; i < system.deviceCount.value; ++i) readers.push_back(std::make_unique<DeviceReader>(nvml.table(), i, traits));
  Snapshot slots[3];
  for (Snapshot& s : slots) s.devices.resize(readers.size());
  const long passes = std::atol(argv[2]);
  for (long p = 0; p < passes; ++p) {
    Snapshot& s = slots[p % 3];
    s.timestampMicros = NowMicrosRealtime();
    for (size_t i = 0; i < readers.size(); ++i) {
      readers[i]->Read(s.devices[i], s.timestampMicros);
      s.devices[i].readNanos = NowNanosMonotonic();
    }
  }
  nvml.Release();
  return 0;
}
